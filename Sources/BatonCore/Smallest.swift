import HeapModule

/// Keeps the `limit` smallest elements offered, in O(log limit) an offer and O(limit) space: one
/// page of a listing without sorting (or copying) everything the state holds. Listings run on the
/// node's event loop, where a full sort of a million locks stalls every client for a second.
struct SmallestSelection<Element: Comparable> {
    private let limit: Int
    private var heap = Heap<Element>()

    init(limit: Int) { self.limit = limit }

    mutating func offer(_ element: Element) {
        if heap.count < limit {
            heap.insert(element)
        } else if let largest = heap.max, element < largest {
            _ = heap.replaceMax(with: element)
        }
    }

    /// The elements kept, smallest first.
    var sorted: [Element] { heap.unordered.sorted() }
}

