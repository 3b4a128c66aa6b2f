import Foundation

/// A parsed database setting: which backend, how to reach it, and a password-free form for messages.
public struct DatabaseTarget: Sendable, Hashable, CustomStringConvertible {
    /// The backend.
    public var backend: StoreBackend
    /// For SQLite: the file path (`:memory:` allowed). For PostgreSQL: the conninfo given to libpq, unchanged.
    public var location: String
    /// The same with any password replaced by `***`.
    public var redacted: String

    public var description: String { redacted }

    /// Parses `sqlite:PATH`, `sqlite://PATH`, `postgres://…`, `postgresql://…` or a libpq keyword string.
    public static func parse(_ setting: String) throws -> DatabaseTarget {
        let text = setting.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty {
            throw StoreError(.invalidURL, "the database setting is empty; set `database:` in signoff.yaml or $SIGNOFF_DATABASE to sqlite:PATH or a postgres:// URL")
        }
        let lower = text.lowercased()
        if lower.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            if path.isEmpty {
                throw StoreError(.invalidURL, "`\(text)` names no file; write sqlite:PATH, e.g. sqlite:signoff.db")
            }
            return DatabaseTarget(backend: .sqlite, location: path, redacted: "sqlite:\(path)")
        }
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            return DatabaseTarget(backend: .postgres, location: text, redacted: redactURL(text))
        }
        if text.contains("=") {
            return DatabaseTarget(backend: .postgres, location: text, redacted: redactKeywords(text))
        }
        if lower.hasSuffix(".db") || lower.hasSuffix(".sqlite") || lower.hasSuffix(".sqlite3") {
            return DatabaseTarget(backend: .sqlite, location: text, redacted: "sqlite:\(text)")
        }
        throw StoreError(.invalidURL, "cannot tell which database `\(redactKeywords(redactURL(text)))` means; use sqlite:PATH, postgres://USER@HOST/DB or a libpq keyword string like `host=/run/postgresql dbname=signoff`")
    }

    /// Removes the password from a postgres URL: the `user:password@` part and any `password=` parameter.
    static func redactURL(_ url: String) -> String {
        var out = url
        if let schemeEnd = out.range(of: "://") {
            let rest = out[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                if let colon = userinfo.firstIndex(of: ":") {
                    out.replaceSubrange(colon..<at, with: ":***")
                }
            }
        }
        return redactParameter(out, separators: ["?", "&"])
    }

    /// Removes `password=…` from a libpq keyword string (quoted values included).
    static func redactKeywords(_ text: String) -> String {
        var result = ""
        var i = text.startIndex
        while i < text.endIndex {
            if text[i...].lowercased().hasPrefix("password"),
               i == text.startIndex || text[text.index(before: i)].isWhitespace {
                var j = text.index(i, offsetBy: "password".count)
                while j < text.endIndex, text[j].isWhitespace { j = text.index(after: j) }
                if j < text.endIndex, text[j] == "=" {
                    j = text.index(after: j)
                    while j < text.endIndex, text[j].isWhitespace { j = text.index(after: j) }
                    if j < text.endIndex, text[j] == "'" {
                        j = text.index(after: j)
                        while j < text.endIndex, text[j] != "'" {
                            if text[j] == "\\" { j = text.index(after: j); if j == text.endIndex { break } }
                            j = text.index(after: j)
                        }
                        if j < text.endIndex { j = text.index(after: j) }
                    } else {
                        while j < text.endIndex, !text[j].isWhitespace { j = text.index(after: j) }
                    }
                    result += "password=***"
                    i = j
                    continue
                }
            }
            result.append(text[i])
            i = text.index(after: i)
        }
        return result
    }

    private static func redactParameter(_ url: String, separators: [Character]) -> String {
        guard let q = url.firstIndex(of: "?") else { return url }
        let head = url[..<q]
        let query = url[url.index(after: q)...]
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            if part.lowercased().hasPrefix("password=") { return "password=***" }
            return String(part)
        }
        return head + "?" + parts.joined(separator: "&")
    }
}
