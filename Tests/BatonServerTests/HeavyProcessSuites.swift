import Testing

/// The suites that load the whole machine: three-member clusters under kill -9, pauses and a seeded
/// nemesis, a node killed under load, h2load. Nested here, they run one at a time even when
/// `swift test` runs everything else in parallel: two of them at once on two cores starved each
/// other's clients and members into timeouts that said nothing about Baton.
@Suite(.serialized) enum HeavyProcessSuites {}
