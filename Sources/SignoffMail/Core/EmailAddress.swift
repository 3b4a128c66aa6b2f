import Foundation

/// A mailbox: an optional display name and an address, compared case-insensitively.
///
/// Shared by the outbound (compose) and inbound (parse) sides of the mail module.
public struct EmailAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The display name, already decoded (no RFC 2047 words).
    public var displayName: String?
    /// The address as written, e.g. `Editor@Example.org`.
    public var address: String

    public init(_ address: String, displayName: String? = nil) {
        self.address = Self.trimmed(address)
        self.displayName = displayName
    }

    /// `text` without leading and trailing whitespace (`CharacterSet.whitespaces`); the string
    /// itself when it starts and ends with a visible ASCII byte (nearly always: Foundation's trim
    /// was a tenth of composing a mail).
    static func trimmed(_ text: String) -> String {
        let utf8 = text.utf8
        if let first = utf8.first, let last = utf8.last, first > 0x20, first < 0x7F, last > 0x20, last < 0x7F { return text }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// The local part, before the last `@`.
    public var localPart: String {
        guard let at = address.lastIndex(of: "@") else { return address }
        return String(address[..<at])
    }

    /// The domain, after the last `@`, lower-cased.
    public var domain: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return String(address[address.index(after: at)...]).lowercased()
    }

    /// The form used for comparing two addresses: the whole address lower-cased.
    /// (Local parts are case-sensitive in theory and never in practice.)
    public var normalized: String { address.lowercased() }

    /// The sub-address after the first `+` of the local part, if any (`approvals+TOKEN@…` → `TOKEN`).
    public var subaddress: String? {
        guard let plus = localPart.firstIndex(of: "+") else { return nil }
        let tag = localPart[localPart.index(after: plus)...]
        return tag.isEmpty ? nil : String(tag)
    }

    /// This address with `tag` as its sub-address: `approvals@x` → `approvals+tag@x`.
    public func withSubaddress(_ tag: String) -> EmailAddress {
        var local = localPart
        if let plus = local.firstIndex(of: "+") { local = String(local[..<plus]) }
        return EmailAddress("\(local)+\(tag)@\(domain)", displayName: displayName)
    }

    /// Whether the address has a plausible `local@domain` shape.
    public var isValid: Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else { return false }
        return !address.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "," })
    }

    public var description: String {
        if let name = displayName, !name.isEmpty { return "\(name) <\(address)>" }
        return address
    }

    public static func == (a: EmailAddress, b: EmailAddress) -> Bool { a.normalized == b.normalized }
    public func hash(into hasher: inout Hasher) { hasher.combine(normalized) }
}
