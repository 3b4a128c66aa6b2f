import Foundation
import Testing
@testable import SignoffRunner

struct CalendarSpecTests {
    static let accepted = [
        "Mon *-*-* 06:00:00", "daily", "weekly", "hourly", "monthly", "minutely", "quarterly", "yearly",
        "annually", "semiannually", "Daily", "monthly UTC", "Mon..Fri 9:00", "Mon,Tue,Wed 10:00", "Sat,Mon 8:0",
        "Mon-Fri", "Sun,Mon", "Mon,Tue", "Mon..Wed,Fri", "Mon..Fri,Sun", "Sat..Sun", "Mon..Mon", "Mon,Mon",
        "MON", "monday", "mon", "*-*-* 0/2:00", "*:0/15", "*:*:0/20", "2026-01-01", "Mon,Fri *-*-1..7 12:00",
        "*-*~1", "*-02~03", "12:30", "0:0", "*-*-*", "Mon 06:00 UTC", "2026-*-* *:*:*", "*-*-* 1,2,3:00",
        "*-*-* 1..3:00", "*-*-* 3,1:00", "*-*-* 1..3,5:00", "*-*-* 0..10/2:00", "*-*-01/3", "*-1/2-1",
        "06:00:30.5", "06:00:00.0", "*-*-* 06:00:00/5", "1..3,2:00", "2:00,1:00", "99-01-01", "70-01-01",
        "1,3,5..7,9-*-*", "Mon  06:00", "*-*-* 06:00:00 Europe/Berlin", "2026-2-30", "Fri 23:59:59",
    ]
    static let rejected = [
        "Fri..Mon", "Wed..Mon", "Tue..Mon", "25:00", "*-*-* 24:00", "*-13-01", "*-*-32", "*:60", "*:*:60",
        "tomorrow", "6", "Mon , Tue", "Mon Tue", "*/2:00", " daily", "daily ", "*-*-* 5/0:00", "1969-01-01",
        "2200-01-01", "", "Mon 06:00 Nowhere/Nothing", "every monday",
    ]

    /// What systemd says: (normalized form, next elapse as printed) or nil when it rejects.
    static func systemd(_ expression: String) throws -> (String, String)? {
        let tool = try #require(TestSupport.which("systemd-analyze"), "systemd-analyze must be installed (apt-get install systemd)")
        var env = ProcessInfo.processInfo.environment
        env["TZ"] = "UTC"
        let result = try TestSupport.run(tool, ["calendar", expression], environment: env)
        guard result.status == 0 else { return nil }
        func field(_ name: String) -> String? {
            result.stdout.split(separator: "\n").first { $0.contains(name + ":") }
                .map { String($0[$0.range(of: name + ":")!.upperBound...]).trimmingCharacters(in: .whitespaces) }
        }
        return (field("Normalized form") ?? "", field("Next elapse") ?? "")
    }

    static func printed(_ date: Date?) -> String {
        guard let date else { return "never" }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE yyyy-MM-dd HH:mm:ss 'UTC'"
        return f.string(from: date)
    }

    @Test(arguments: accepted)
    func normalizesLikeSystemdAnalyze(_ expression: String) throws {
        let spec = try CalendarSpec(parsing: expression)
        let systemd = try #require(try Self.systemd(expression), "systemd-analyze rejects `\(expression)`, which we accept")
        #expect(spec.normalized == systemd.0, "normalized form of `\(expression)`: systemd says `\(systemd.0)`")
    }

    @Test(arguments: accepted)
    func nextElapseMatchesSystemdAnalyze(_ expression: String) throws {
        let spec = try CalendarSpec(parsing: expression)
        let utc = TimeZone(identifier: "UTC")!
        // A second boundary may pass between our computation and systemd's: try twice.
        var ours = "", theirs = ""
        for _ in 0..<2 {
            ours = Self.printed(spec.nextElapse(after: Date(), defaultTimeZone: utc))
            theirs = try #require(try Self.systemd(expression)).1
            if spec.timeZone == "Europe/Berlin" { return }  // systemd prints that one in local time
            if ours == theirs { break }
        }
        #expect(ours == theirs, "next elapse of `\(expression)`")
    }

    @Test(arguments: rejected)
    func rejectsWhatSystemdRejects(_ expression: String) throws {
        #expect(throws: CalendarSpec.ParseError.self, "we accept `\(expression)`") { try CalendarSpec(parsing: expression) }
        #expect(try Self.systemd(expression) == nil, "systemd accepts `\(expression)`, which we reject")
    }

    @Test func explainsABackwardsWeekdayRange() throws {
        do {
            _ = try CalendarSpec(parsing: "Fri..Mon 06:00")
            Issue.record("expected an error")
        } catch let error as CalendarSpec.ParseError {
            #expect(error.problem.contains("backwards"))
        }
    }
}
