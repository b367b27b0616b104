/// 64-bit FNV-1a: a hash that is the same in every process, build and member (Swift's `Hasher` is
/// seeded per process), for values replicas must agree on (`CommandDigest`, a slot's jitter).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    mutating func add<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        for byte in bytes { add(byte) }
    }
}
