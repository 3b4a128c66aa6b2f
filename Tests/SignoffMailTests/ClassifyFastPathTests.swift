import Crypto
import Foundation
@testable import SignoffMail
import Testing

/// The classifier's faster paths give exactly what the definitions they replace give, on varied
/// input (random bytes and lines, the corpora's lines, crafted edge cases).
struct ClassifyFastPathTests {
    @Test func digestHexWrittenInPlaceEqualsTheByteByByteHex() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 31, 32, 33, 100, 1000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(TextFast.hex(contiguous: bytes) == TextFast.hex(bytes))
            let digest = SHA256.hash(data: bytes)
            #expect(TextFast.hex(contiguous: digest) == TextFast.hex(digest))
        }
        #expect(TextFast.hex(contiguous: [0x00, 0x0F, 0xA5, 0xFF] as [UInt8]) == "000fa5ff")
    }

    @Test func tokenHashIsTheSHA256HexOfTheLowerCasedToken() {
        for token in ["abc", "ABCdef123", "Tök", "İx", "", String(repeating: "k", count: 300)] {
            let expected = SHA256.hash(data: Data(token.lowercased().utf8)).map { String(format: "%02x", $0) }.joined()
            #expect(InboundClassifier.tokenHash(token) == expected, "\(token.debugDescription)")
        }
    }
}
