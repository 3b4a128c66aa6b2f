import Foundation

/// The RFC 5322 `Date` header form: `Sat, 21 Nov 2026 06:30:00 +0000` (always UTC, English
/// names), and the two forms templates show, written straight into bytes.
enum MailDate {
    private static let days: StaticString = "SunMonTueWedThuFriSat"
    private static let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"

    static func format(_ date: Date) -> String {
        var out = [UInt8]()
        out.reserveCapacity(32)
        append(date, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `Sat, 21 Nov 2026 06:30:00 +0000`.
    static func append(_ date: Date, into out: inout [UInt8]) {
        let t = parts(date)
        appendDayAndTime(t, into: &out)
        out.append(0x3A)
        number(t.tm_sec, minDigits: 2, into: &out)
        out.append(contentsOf: " +0000".utf8)
    }

    /// Appends `Mon, 23 Nov 2026 17:00 UTC` (the header form without seconds and zone).
    static func appendHuman(_ date: Date, into out: inout [UInt8]) {
        appendDayAndTime(parts(date), into: &out)
        out.append(contentsOf: " UTC".utf8)
    }

    /// Appends `2026-11-23T17:00:00Z`.
    static func appendISO(_ date: Date, into out: inout [UInt8]) {
        let t = parts(date)
        number(t.tm_year + 1900, minDigits: 4, into: &out)
        out.append(0x2D)
        number(t.tm_mon + 1, minDigits: 2, into: &out)
        out.append(0x2D)
        number(t.tm_mday, minDigits: 2, into: &out)
        out.append(0x54)
        number(t.tm_hour, minDigits: 2, into: &out)
        out.append(0x3A)
        number(t.tm_min, minDigits: 2, into: &out)
        out.append(0x3A)
        number(t.tm_sec, minDigits: 2, into: &out)
        out.append(0x5A)
    }

    private static func parts(_ date: Date) -> tm {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return parts
    }

    /// `Sat, 21 Nov 2026 06:30`.
    private static func appendDayAndTime(_ t: tm, into out: inout [UInt8]) {
        let day = Int(t.tm_wday) * 3, month = Int(t.tm_mon) * 3
        out.append(contentsOf: UnsafeBufferPointer(start: days.utf8Start + day, count: 3))
        out.append(0x2C)
        out.append(0x20)
        number(t.tm_mday, minDigits: 1, into: &out)
        out.append(0x20)
        out.append(contentsOf: UnsafeBufferPointer(start: months.utf8Start + month, count: 3))
        out.append(0x20)
        number(t.tm_year + 1900, minDigits: 1, into: &out)
        out.append(0x20)
        number(t.tm_hour, minDigits: 2, into: &out)
        out.append(0x3A)
        number(t.tm_min, minDigits: 2, into: &out)
    }

    /// `String(n)` left-padded with zeros to `minDigits` characters (a sign counts as one).
    private static func number(_ n: Int32, minDigits: Int, into out: inout [UInt8]) {
        if n >= 0, n < 100, minDigits <= 2 {
            if n >= 10 || minDigits == 2 { out.append(0x30 + UInt8(n / 10)) }
            out.append(0x30 + UInt8(n % 10))
            return
        }
        if n >= 1000, n < 10000, minDigits <= 4 {
            out.append(0x30 + UInt8(n / 1000))
            out.append(0x30 + UInt8(n / 100 % 10))
            out.append(0x30 + UInt8(n / 10 % 10))
            out.append(0x30 + UInt8(n % 10))
            return
        }
        guard n >= 0 else {
            let digits = String(n).utf8
            if digits.count < minDigits { out.append(contentsOf: repeatElement(0x30, count: minDigits - digits.count)) }
            out.append(contentsOf: digits)
            return
        }
        var buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &buffer) { b in
            var value = UInt32(n)
            var i = b.count
            repeat {
                i -= 1
                b[i] = 0x30 + UInt8(value % 10)
                value /= 10
            } while value > 0
            let count = b.count - i
            if count < minDigits { out.append(contentsOf: repeatElement(0x30, count: minDigits - count)) }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[i...]))
        }
    }
}
