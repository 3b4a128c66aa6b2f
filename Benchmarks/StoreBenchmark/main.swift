import Foundation

// StoreBenchmark: measurements of the run store (JSON on stdout) and the worker process the
// store's multi-process tests spawn.
//
//   StoreBenchmark supersteps --database URL [--runs 16 --steps 200]
//   StoreBenchmark cycles     --database URL [--runs 2000 --tasks 8 --batch 16]
//   StoreBenchmark claims     --database URL [--runs 50000 --processes 2 --batch 500]
//   StoreBenchmark worker     --database URL --owner NAME [--lease S --batch N --steps N --pause-at K --step-ms MS --idle-exit S]
//   StoreBenchmark enqueue    --database URL --count N
let arguments = CommandLine.arguments
let usage = "usage: StoreBenchmark supersteps|cycles|claims|drain|worker|enqueue --database URL [options]"
guard arguments.count >= 2 else {
    emitError(usage)
    exit(64)
}
do {
    let options = try Options(arguments.dropFirst(2))
    switch arguments[1] {
    case "supersteps": try await Benchmarks.supersteps(options)
    case "cycles": try await Benchmarks.cycles(options)
    case "claims": try await Benchmarks.claims(options)
    case "drain": try await Benchmarks.drain(options)
    case "enqueue": try await Benchmarks.enqueue(options)
    case "answers": try await Benchmarks.answers(options)
    case "worker": try await Worker(options).run()
    default:
        emitError(usage)
        exit(64)
    }
} catch {
    emitError("StoreBenchmark: \(error)")
    exit(1)
}
