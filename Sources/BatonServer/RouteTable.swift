import BatonNode

/// The routes of the answers a node will give, in slots reused as answers go out: a request costs
/// no hashing. A `RouteID` names a slot and the slot's generation, so an answer for a route whose
/// connection closed (its slot since reused) is dropped, never sent to the request in the slot now.
struct RouteTable {
    private var slots: [(generation: UInt32, route: NodeRuntime.Route?)] = []
    private var free: [Int] = []

    /// Keeps `route`; returns its id.
    mutating func insert(_ route: NodeRuntime.Route) -> RouteID {
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            slots[slot].generation &+= 1
            slots[slot].route = route
        } else {
            slot = slots.count
            slots.append((0, route))
        }
        return RouteID(UInt64(slots[slot].generation) << 32 | UInt64(slot))
    }

    /// Removes and returns the route `id` names, if it is still there.
    mutating func remove(_ id: RouteID) -> NodeRuntime.Route? {
        let slot = Int(id.rawValue & 0xFFFF_FFFF)
        guard slots.indices.contains(slot), slots[slot].generation == UInt32(id.rawValue >> 32),
            let route = slots[slot].route
        else { return nil }
        slots[slot].route = nil
        free.append(slot)
        return route
    }

    /// Drops every route that `shouldRemove` picks (a connection closed).
    mutating func removeAll(where shouldRemove: (NodeRuntime.Route) -> Bool) {
        for slot in slots.indices {
            guard let route = slots[slot].route, shouldRemove(route) else { continue }
            slots[slot].route = nil
            free.append(slot)
        }
    }

    /// Removes and returns every route, oldest slot first.
    mutating func takeAll() -> [NodeRuntime.Route] {
        var taken: [NodeRuntime.Route] = []
        for slot in slots.indices {
            guard let route = slots[slot].route else { continue }
            taken.append(route)
            slots[slot].route = nil
            free.append(slot)
        }
        return taken
    }
}
