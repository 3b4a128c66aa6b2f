import Foundation

/// The RFC 5322 `Date` header form: `Sat, 21 Nov 2026 06:30:00 +0000` (always UTC, English names).
enum MailDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var out = [UInt8]()
        out.reserveCapacity(32)
        func number(_ n: Int32, minDigits: Int) {
            let digits = Array(String(n).utf8)
            if digits.count < minDigits { out.append(contentsOf: repeatElement(0x30, count: minDigits - digits.count)) }
            out.append(contentsOf: digits)
        }
        out.append(contentsOf: days[Int(parts.tm_wday)].utf8)
        out.append(contentsOf: ", ".utf8)
        number(parts.tm_mday, minDigits: 1)
        out.append(0x20)
        out.append(contentsOf: months[Int(parts.tm_mon)].utf8)
        out.append(0x20)
        number(parts.tm_year + 1900, minDigits: 1)
        out.append(0x20)
        number(parts.tm_hour, minDigits: 2)
        out.append(0x3A)
        number(parts.tm_min, minDigits: 2)
        out.append(0x3A)
        number(parts.tm_sec, minDigits: 2)
        out.append(contentsOf: " +0000".utf8)
        return String(decoding: out, as: UTF8.self)
    }
}
