import Foundation

/// A systemd calendar event expression (`OnCalendar=`), parsed with systemd's grammar:
/// `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]`, the shorthands
/// `minutely hourly daily weekly monthly yearly annually quarterly semiannually`, lists (`,`),
/// ranges (`..`, and `-` between weekdays), repetitions (`/N`) and last days of the month (`~`).
///
/// `normalized` prints the expression the way `systemd-analyze calendar` does, and
/// `nextElapse(after:)` computes the next time it fires.
public struct CalendarSpec: Sendable, Hashable, CustomStringConvertible {
    /// One element of a comma list: a value, a range `start..stop`, and an optional repetition.
    public struct Component: Sendable, Hashable, Comparable {
        /// The value; seconds are in microseconds.
        public var start: Int
        /// The end of a range, inclusive.
        public var stop: Int?
        /// Every `repeat` units from `start`.
        public var `repeat`: Int?

        public static func < (a: Component, b: Component) -> Bool {
            (a.start, a.stop ?? -1, a.repeat ?? 0) < (b.start, b.stop ?? -1, b.repeat ?? 0)
        }

        func matches(_ v: Int) -> Bool {
            if let stop {
                guard v >= start, v <= stop else { return false }
                if let r = `repeat` { return (v - start) % r == 0 }
                return true
            }
            if let r = `repeat` { return v >= start && (v - start) % r == 0 }
            return v == start
        }
    }

    /// A problem with an expression.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var problem: String
        public var description: String { problem }
    }

    /// Weekdays, Monday = 0 … Sunday = 6; nil means every day.
    public var weekdays: Set<Int>?
    /// nil means `*`.
    public var years: [Component]?
    public var months: [Component]?
    public var days: [Component]?
    /// `~`: days count back from the end of the month.
    public var endOfMonth: Bool
    public var hours: [Component]?
    public var minutes: [Component]?
    /// In microseconds.
    public var seconds: [Component]?
    /// A time zone name given after the time (`UTC`, `Europe/Berlin`), else local time.
    public var timeZone: String?
    /// The expression as written.
    public var original: String

    static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let longDayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let shorthands: [String: String] = [
        "minutely": "*-*-* *:*:00", "hourly": "*-*-* *:00:00", "daily": "*-*-* 00:00:00",
        "monthly": "*-*-01 00:00:00", "weekly": "Mon *-*-* 00:00:00", "yearly": "*-01-01 00:00:00",
        "annually": "*-01-01 00:00:00", "quarterly": "*-01,04,07,10-01 00:00:00",
        "semiannually": "*-01,07-01 00:00:00",
    ]

    /// Parses `text`; throws `ParseError` naming the problem.
    public init(parsing text: String) throws {
        original = text
        weekdays = nil; years = nil; months = nil; days = nil; endOfMonth = false
        hours = [Component(start: 0)]; minutes = [Component(start: 0)]; seconds = [Component(start: 0)]
        timeZone = nil
        guard !text.isEmpty else { throw ParseError(problem: "it is empty") }
        guard text.first != " ", text.last != " " else { throw ParseError(problem: "it starts or ends with a space") }
        var body = Substring(text)
        // A trailing time zone.
        if let space = body.lastIndex(of: " ") {
            let last = String(body[body.index(after: space)...])
            if Self.isTimeZone(last) {
                timeZone = last
                body = body[..<space]
                while body.last == " " { body = body.dropLast() }
            }
        }
        if let expansion = Self.shorthands[body.lowercased()] {
            let tz = timeZone
            self = try CalendarSpec(parsing: expansion)
            original = text
            timeZone = tz
            return
        }
        var p = body
        try parseWeekdays(&p)
        try parseDate(&p)
        try parseTime(&p)
        guard p.isEmpty else { throw ParseError(problem: "unexpected `\(p)`") }
        try check()
    }

    static func isTimeZone(_ s: String) -> Bool {
        if s == "UTC" { return true }
        guard s.contains("/") || s.uppercased() == s, s.first?.isLetter == true,
              !s.contains(":"), !s.contains("-") || s.contains("/") else { return false }
        return TimeZone(identifier: s) != nil
    }

    // MARK: Parsing

    mutating func parseWeekdays(_ p: inout Substring) throws {
        guard let first = p.first, first.isLetter else { return }
        var set = Set<Int>()
        var previous: Int?
        var inRange = false
        while true {
            let word = p.prefix { $0.isLetter }
            guard let day = Self.weekday(String(word)) else {
                throw ParseError(problem: "`\(word)` is not a weekday (write Mon, Tue, … or Monday, …)")
            }
            p = p.dropFirst(word.count)
            if inRange, let from = previous {
                guard from <= day else { throw ParseError(problem: "the weekday range \(Self.dayNames[from])..\(Self.dayNames[day]) runs backwards (weeks start on Monday)") }
                for d in from...day { set.insert(d) }
                inRange = false
                previous = nil
            } else {
                set.insert(day)
                previous = day
            }
            if p.hasPrefix("..") { p = p.dropFirst(2); inRange = true; continue }
            if p.hasPrefix("-") { p = p.dropFirst(); inRange = true; continue }
            if p.hasPrefix(",") { p = p.dropFirst(); previous = nil; continue }
            break
        }
        if !p.isEmpty {
            guard p.first == " " else { throw ParseError(problem: "expected a space after the weekdays, found `\(p.prefix(1))`") }
            while p.first == " " { p = p.dropFirst() }
        }
        weekdays = set
    }

    static func weekday(_ word: String) -> Int? {
        let w = word.lowercased()
        if let i = longDayNames.firstIndex(of: w) { return i }
        if let i = dayNames.firstIndex(where: { $0.lowercased() == w }) { return i }
        return nil
    }

    mutating func parseDate(_ p: inout Substring) throws {
        guard !p.isEmpty else { return }
        var t = p
        let first = try parseChain(&t, fractional: false)
        if t.isEmpty || t.first == ":" { return }  // a time, not a date
        var eom = false
        if t.first == "~" { eom = true } else if t.first != "-" {
            throw ParseError(problem: "expected `-` between date parts, found `\(t.prefix(1))`")
        }
        t = t.dropFirst()
        let second = try parseChain(&t, fractional: false)
        if t.isEmpty || t.first == " " {
            months = first; days = second; endOfMonth = eom
            while t.first == " " { t = t.dropFirst() }
            p = t
            return
        }
        if eom { throw ParseError(problem: "`~` may only separate the month from the day") }
        if t.first == "~" { eom = true } else if t.first != "-" {
            throw ParseError(problem: "expected `-` between date parts, found `\(t.prefix(1))`")
        }
        t = t.dropFirst()
        let third = try parseChain(&t, fractional: false)
        guard t.isEmpty || t.first == " " else { throw ParseError(problem: "unexpected `\(t.prefix(1))` after the date") }
        while t.first == " " { t = t.dropFirst() }
        p = t
        // Two-digit years, as systemd reads them.
        years = first.map { chain in
            chain.map { c in
                var c = c
                func fix(_ v: Int) -> Int { v < 70 ? v + 2000 : (v < 100 ? v + 1900 : v) }
                c.start = fix(c.start)
                if let s = c.stop { c.stop = fix(s) }
                return c
            }
        }
        months = second; days = third; endOfMonth = eom
    }

    mutating func parseTime(_ p: inout Substring) throws {
        guard !p.isEmpty else { return }
        let h = try parseChain(&p, fractional: false)
        guard p.first == ":" else { throw ParseError(problem: "expected `:` in the time, found `\(p.prefix(1))`") }
        p = p.dropFirst()
        let m = try parseChain(&p, fractional: false)
        hours = h; minutes = m
        if p.isEmpty { seconds = [Component(start: 0)]; return }
        guard p.first == ":" else { throw ParseError(problem: "expected `:` or the end after the minutes, found `\(p.prefix(1))`") }
        p = p.dropFirst()
        seconds = try parseChain(&p, fractional: true)
        guard p.isEmpty else { throw ParseError(problem: "unexpected `\(p)` after the seconds") }
    }

    /// `*` → nil; else a comma list of `start[..stop][/repeat]`.
    func parseChain(_ p: inout Substring, fractional: Bool) throws -> [Component]? {
        if p.first == "*" {
            p = p.dropFirst()
            if p.first == "/" { throw ParseError(problem: "`*/N` is not systemd syntax; write `0/N` (from 0, every N)") }
            return nil
        }
        var out: [Component] = []
        while true {
            var c = Component(start: try parseNumber(&p, fractional: fractional))
            if p.hasPrefix("..") {
                p = p.dropFirst(2)
                c.stop = try parseNumber(&p, fractional: fractional)
            }
            if p.first == "/" {
                p = p.dropFirst()
                let r = try parseNumber(&p, fractional: fractional)
                guard r > 0 else { throw ParseError(problem: "a repetition `/0` never repeats; write /1 or more") }
                c.repeat = r
            }
            out.append(c)
            if p.first == "," { p = p.dropFirst(); continue }
            break
        }
        return out
    }

    func parseNumber(_ p: inout Substring, fractional: Bool) throws -> Int {
        let digits = p.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9, let v = Int(digits) else {
            throw ParseError(problem: p.isEmpty ? "a number is missing at the end" : "expected a number or `*`, found `\(p.prefix(6))`")
        }
        p = p.dropFirst(digits.count)
        guard fractional else { return v }
        var usec = v * 1_000_000
        if p.first == "." {
            p = p.dropFirst()
            let frac = p.prefix { $0.isASCII && $0.isNumber }
            guard !frac.isEmpty else { throw ParseError(problem: "a `.` must be followed by digits") }
            p = p.dropFirst(frac.count)
            let six = String((String(frac) + "000000").prefix(6))
            usec += Int(six)!
        }
        return usec
    }

    func check() throws {
        func range(_ chain: [Component]?, _ name: String, _ lo: Int, _ hi: Int, scale: Int = 1) throws {
            for c in chain ?? [] {
                for v in [c.start, c.stop].compactMap({ $0 }) where v < lo * scale || v > hi * scale + (scale - 1) {
                    throw ParseError(problem: "\(name) \(scale > 1 ? v / scale : v) is out of range \(lo)…\(hi)")
                }
                if let stop = c.stop, stop < c.start { throw ParseError(problem: "the \(name) range \(c.start)..\(stop) runs backwards") }
            }
        }
        try range(years, "year", 1970, 2199)
        try range(months, "month", 1, 12)
        try range(days, "day", 1, 31)
        try range(hours, "hour", 0, 23)
        try range(minutes, "minute", 0, 59)
        try range(seconds, "second", 0, 59, scale: 1_000_000)
    }

    // MARK: Printing

    /// The expression as `systemd-analyze calendar` prints its "Normalized form".
    public var normalized: String {
        var out = ""
        if let weekdays {
            out += Self.formatWeekdays(weekdays) + " "
        }
        out += Self.format(years, width: 4) + "-" + Self.format(months, width: 2) + (endOfMonth ? "~" : "-")
            + Self.format(days, width: 2) + " "
        out += Self.format(hours, width: 2) + ":" + Self.format(minutes, width: 2) + ":" + Self.formatSeconds(seconds)
        if let timeZone { out += " " + timeZone }
        return out
    }

    public var description: String { normalized }

    static func formatWeekdays(_ set: Set<Int>) -> String {
        var parts: [String] = []
        var d = 0
        while d < 7 {
            guard set.contains(d) else { d += 1; continue }
            var end = d
            while end + 1 < 7, set.contains(end + 1) { end += 1 }
            switch end - d {
            case 0: parts.append(dayNames[d])
            case 1: parts.append(dayNames[d]); parts.append(dayNames[end])
            default: parts.append("\(dayNames[d])..\(dayNames[end])")
            }
            d = end + 1
        }
        return parts.joined(separator: ",")
    }

    static func sortedUnique(_ chain: [Component]) -> [Component] {
        var out: [Component] = []
        for c in chain.sorted() where out.last != c { out.append(c) }
        return out
    }

    static func format(_ chain: [Component]?, width: Int) -> String {
        guard let chain else { return "*" }
        return sortedUnique(chain).map { c in
            var s = pad(c.start, width)
            if let stop = c.stop, stop != c.start { s += ".." + pad(stop, width) }
            if let r = c.repeat { s += "/\(r)" }
            return s
        }.joined(separator: ",")
    }

    static func formatSeconds(_ chain: [Component]?) -> String {
        guard let chain else { return "*" }
        func usec(_ v: Int, pad2: Bool) -> String {
            let whole = v / 1_000_000, frac = v % 1_000_000
            var s = pad2 ? pad(whole, 2) : String(whole)
            if frac != 0 { s += "." + String(format: "%06d", frac) }
            return s
        }
        return sortedUnique(chain).map { c in
            var s = usec(c.start, pad2: true)
            if let stop = c.stop, stop != c.start { s += ".." + usec(stop, pad2: true) }
            if let r = c.repeat { s += "/" + usec(r, pad2: false) }
            return s
        }.joined(separator: ",")
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    // MARK: Next elapse

    /// The first time after `date` that the expression matches, or nil if it never does again
    /// (searched up to the year 2199, systemd's limit).
    public func nextElapse(after date: Date, defaultTimeZone: TimeZone = .current) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone.flatMap { TimeZone(identifier: $0) } ?? defaultTimeZone
        let startDay = calendar.startOfDay(for: date)
        let hoursList = (0..<24).filter { h in hours.map { $0.contains { $0.matches(h) } } ?? true }
        let minutesList = (0..<60).filter { m in minutes.map { $0.contains { $0.matches(m) } } ?? true }
        let secondsList: [Int]
        if let seconds {
            secondsList = Self.secondValues(seconds)
        } else {
            secondsList = (0..<60).map { $0 * 1_000_000 }
        }
        guard !hoursList.isEmpty, !minutesList.isEmpty, !secondsList.isEmpty else { return nil }
        var day = startDay
        for _ in 0..<(366 * 175) {
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            guard let y = c.year, let mo = c.month, let d = c.day, let wd = c.weekday else { return nil }
            if y > 2199 { return nil }
            if let years, let maxYear = years.map({ $0.stop ?? ($0.repeat == nil ? $0.start : 2199) }).max(), y > maxYear { return nil }
            if matchesDay(year: y, month: mo, day: d, weekday: (wd + 5) % 7, calendar: calendar, date: day) {
                for h in hoursList {
                    for m in minutesList {
                        for s in secondsList {
                            var dc = DateComponents()
                            dc.year = y; dc.month = mo; dc.day = d; dc.hour = h; dc.minute = m
                            dc.second = s / 1_000_000; dc.nanosecond = (s % 1_000_000) * 1000
                            guard let candidate = calendar.date(from: dc) else { continue }
                            // Skip times that do not exist on this day (DST gaps shift the hour).
                            if calendar.component(.hour, from: candidate) != h { continue }
                            if candidate > date { return candidate }
                        }
                    }
                }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = next
        }
        return nil
    }

    static func secondValues(_ chain: [Component]) -> [Int] {
        var values = Set<Int>()
        for c in chain {
            let end = c.stop ?? (c.repeat == nil ? c.start : 59_999_999)
            var v = c.start
            let step = c.repeat ?? 1_000_000
            while v <= end, v < 60_000_000 {
                if c.repeat != nil || c.stop == nil || (v - c.start) % 1_000_000 == 0 { values.insert(v) }
                if c.repeat == nil, c.stop == nil { break }
                v += step
            }
        }
        return values.sorted()
    }

    func matchesDay(year: Int, month: Int, day: Int, weekday: Int, calendar: Calendar, date: Date) -> Bool {
        if let weekdays, !weekdays.contains(weekday) { return false }
        if let years, !years.contains(where: { $0.matches(year) }) { return false }
        if let months, !months.contains(where: { $0.matches(month) }) { return false }
        if let days {
            var d = day
            if endOfMonth {
                let count = calendar.range(of: .day, in: .month, for: date)?.count ?? 31
                d = count - day + 1
            }
            if !days.contains(where: { $0.matches(d) }) { return false }
        }
        return true
    }
}
