import Crypto
import Foundation

/// A per-(request, reviewer) reply token: 128 random bits written as 26 lower-case base32
/// characters (RFC 4648 alphabet, lower-cased, no padding).
///
/// The token travels as the sub-address of the reply address (`approvals+TOKEN@example.org`).
/// Only ``sha256Hex`` is stored; the token itself exists in the mail and nowhere else, so
/// `description` never prints it.
public struct ReplyToken: Sendable, Hashable, CustomStringConvertible {
    /// The 26-character lower-case base32 text.
    public let value: String

    /// A fresh token from the system's cryptographic random source.
    public init() {
        var rng = SystemRandomNumberGenerator()
        self.init(using: &rng)
    }

    /// A token drawn from `generator` (tests pass a seeded generator; production uses the system one).
    public init<G: RandomNumberGenerator>(using generator: inout G) {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in stride(from: 0, to: 16, by: 8) {
            let word = generator.next()
            for j in 0..<8 { bytes[i + j] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(j))) }
        }
        self.value = ReplyToken.base32(bytes)
    }

    /// Parses a token as found in a sub-address; `nil` unless it has the exact shape of one
    /// (26 base32 characters, case-insensitive).
    public init?(parsing text: String) {
        let lower = text.lowercased()
        guard lower.utf8.count == 26,
              lower.utf8.allSatisfy({ ReplyToken.alphabet.contains($0) }) else { return nil }
        self.value = lower
    }

    /// SHA-256 of the token text, lower-case hex: the only form the store keeps.
    public var sha256Hex: String { ReplyToken.sha256Hex(of: value) }

    /// SHA-256 hex of a token text as received (lower-cased first, so `ABC…` and `abc…` agree).
    public static func sha256Hex(of token: String) -> String {
        let digest = SHA256.hash(data: Array(token.lowercased().utf8))
        return MailMessage.lowerHex(digest)
    }

    /// Never the token itself: logs and errors must not carry it.
    public var description: String { "ReplyToken(redacted)" }

    private static let alphabet: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// RFC 4648 base32, lower-case, no padding.
    static func base32(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 0x1F)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
