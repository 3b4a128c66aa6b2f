import Foundation

/// `--name value` options for the subcommands (the benchmark has no argument-parser dependency).
struct Options {
    var values: [String: String] = [:]

    init(_ arguments: ArraySlice<String>) throws {
        var i = arguments.startIndex
        while i < arguments.endIndex {
            let key = arguments[i]
            guard key.hasPrefix("--") else { throw UsageError("unexpected argument \(key)") }
            let next = arguments.index(after: i)
            guard next < arguments.endIndex else { throw UsageError("\(key) needs a value") }
            values[String(key.dropFirst(2))] = arguments[next]
            i = arguments.index(after: next)
        }
    }

    func string(_ name: String) throws -> String {
        guard let v = values[name] else { throw UsageError("--\(name) is required") }
        return v
    }
    func string(_ name: String, default value: String) -> String { values[name] ?? value }
    func int(_ name: String, default value: Int) throws -> Int {
        guard let text = values[name] else { return value }
        guard let v = Int(text) else { throw UsageError("--\(name) must be a whole number, got \(text)") }
        return v
    }
    func double(_ name: String, default value: Double) throws -> Double {
        guard let text = values[name] else { return value }
        guard let v = Double(text) else { throw UsageError("--\(name) must be a number, got \(text)") }
        return v
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes one line to stdout at once (the tests read it while the process runs).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func emitError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
