import Foundation

/// Durations as written in job files and `signoff.yaml`: `30s`, `10m`, `72h`, `1d`, `2w`, `500ms`,
/// or combinations such as `1h30m`. A bare number is seconds.
public enum DurationText {
    /// Parses `text` into seconds; nil when it is not a duration.
    public static func seconds(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        if s.isEmpty { return nil }
        if let n = Double(s), n >= 0 { return n }
        var total = 0.0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let n = Double(number) else { return false }
            let factor: Double
            switch unit {
            case "ms": factor = 0.001
            case "s", "sec", "secs", "second", "seconds": factor = 1
            case "m", "min", "mins", "minute", "minutes": factor = 60
            case "h", "hr", "hour", "hours": factor = 3600
            case "d", "day", "days": factor = 86400
            case "w", "week", "weeks": factor = 604_800
            default: return false
            }
            total += n * factor
            number = ""; unit = ""; sawAny = true
            return true
        }
        for ch in s where ch != " " {
            if ch.isNumber || ch == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(ch)
            } else {
                return nil
            }
        }
        if !number.isEmpty { guard !unit.isEmpty, flush() else { return nil } }
        return sawAny ? total : nil
    }

    /// Formats seconds the way job files write them: `90` → `1m30s`.
    public static func format(_ seconds: Double) -> String {
        if seconds < 1, seconds > 0 { return "\(Int((seconds * 1000).rounded()))ms" }
        var rest = Int(seconds.rounded())
        if rest == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            out += "\(rest / size)\(unit)"
            rest %= size
        }
        return out
    }
}
