import Foundation

/// One problem found in a job file or `signoff.yaml`: where it is, what is wrong, what to write instead.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file, as the user named it.
    public var file: String
    /// 1-based line, 0 when unknown.
    public var line: Int
    /// 1-based column, 0 when unknown.
    public var column: Int
    /// What is wrong.
    public var message: String
    /// What to write instead, if there is a concrete suggestion.
    public var hint: String?

    public init(file: String, line: Int, column: Int, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
    }

    /// `file:line:column: message (hint)`, the shape editors and compilers use.
    public var description: String {
        var out = file
        if line > 0 { out += ":\(line):\(column)" }
        out += ": \(message)"
        if let hint { out += "; \(hint)" }
        return out
    }
}

/// A file with one or more problems.
public struct DiagnosticsError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, in file order.
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }

    /// The same problems as a user-facing `RunnerError` (usage: the file must be fixed).
    public var runnerError: RunnerError {
        RunnerError.usage("file.invalid", description)
    }
}

/// Suggests the closest of `candidates` to a misspelt `word` ("did you mean …").
public enum Spelling {
    /// The best candidate within an edit distance of roughly a third of the word, or nil.
    public static func suggestion(for word: String, in candidates: [String]) -> String? {
        let w = word.lowercased()
        var best: (String, Int)?
        for c in candidates {
            let d = distance(w, c.lowercased())
            if best == nil || d < best!.1 { best = (c, d) }
        }
        guard let (c, d) = best else { return nil }
        let limit = max(2, w.count / 3)
        if d <= limit || c.lowercased().hasPrefix(w) || w.hasPrefix(c.lowercased()) { return c }
        return nil
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1,
                                 previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
