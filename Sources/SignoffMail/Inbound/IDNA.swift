import Foundation

/// Domain comparison form: NFKC, lower-cased, each non-ASCII label as `xn--` Punycode
/// (RFC 3492), trailing dot removed.
public enum IDNA {
    /// `Bücher.Example` → `xn--bcher-kva.example`.
    public static func asciiLowercased(_ domain: String) -> String {
        if domain.utf8.allSatisfy({ $0 < 0x80 }) {
            let d = domain.lowercased()
            return d.hasSuffix(".") ? String(d.dropLast()) : d
        }
        var d = domain.precomposedStringWithCompatibilityMapping.lowercased()
        d = d.replacingOccurrences(of: "。", with: ".")
        if d.hasSuffix(".") { d.removeLast() }
        return d.split(separator: ".", omittingEmptySubsequences: false).map { label -> String in
            if label.unicodeScalars.allSatisfy({ $0.isASCII }) { return String(label) }
            return "xn--" + punycode(Array(label.unicodeScalars))
        }.joined(separator: ".")
    }

    /// The comparison form of a whole address: local part lower-cased, domain IDNA-lowered.
    public static func comparable(_ address: EmailAddress) -> String {
        // ASCII: local part (before the last `@`) and domain lower-cased, one trailing dot off.
        var copy = address.address
        let fast = copy.withUTF8 { u -> String? in
            var at = -1
            for (k, b) in u.enumerated() {
                if b >= 0x80 { return nil }
                if b == 0x40 { at = k }
            }
            // Lower-cased bytes written straight into the string: "@" appended when there is
            // none, a trailing "." after a non-empty domain dropped.
            let count = at < 0 ? u.count + 1 : (u.count > at + 1 && u[u.count - 1] == 0x2E ? u.count - 1 : u.count)
            return String(unsafeUninitializedCapacity: count) { buf in
                for k in 0..<min(count, u.count) { let b = u[k]; buf[k] = (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
                if at < 0 { buf[u.count] = 0x40 }
                return count
            }
        }
        if let fast { return fast }
        return address.localPart.lowercased() + "@" + asciiLowercased(address.domain)
    }

    static func punycode(_ input: [Unicode.Scalar]) -> String {
        let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
        var n = 128, delta = 0, bias = 72
        var output = String(input.filter { $0.isASCII }.map(Character.init))
        let b = output.count
        var h = b
        if b > 0 { output.append("-") }
        func digit(_ d: Int) -> Character { Character(Unicode.Scalar(UInt8(d < 26 ? d + 97 : d + 22))) }
        func adapt(_ delta: Int, _ numPoints: Int, _ first: Bool) -> Int {
            var delta = first ? delta / damp : delta / 2
            delta += delta / numPoints
            var k = 0
            while delta > ((base - tMin) * tMax) / 2 { delta /= base - tMin; k += base }
            return k + (base - tMin + 1) * delta / (delta + skew)
        }
        let codes = input.map { Int($0.value) }
        while h < codes.count {
            let m = codes.filter { $0 >= n }.min()!
            delta += (m - n) * (h + 1)
            n = m
            for c in codes {
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, h + 1, h == b)
                    delta = 0
                    h += 1
                }
            }
            delta += 1; n += 1
        }
        return output
    }
}
