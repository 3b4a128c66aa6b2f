// Entry point; the benchmarks live in Benchmarks.swift (functions, so no state is global).
try await EngineBenchmark.run()
