import Foundation
import Testing
@testable import SignoffRunner
import SignoffMail

/// The pieces of scheduled reminders that need no services.
struct ReminderMailTests {
    @Test(arguments: ["\r\n", "\n"])
    func theSenderReadsTheTokenFromTheStoredReplyTo(_ newline: String) {
        let raw = ["From: Signoff <signoff@example.org>", "To: a@example.org",
                   "Reply-To: Approvals <approvals+abc234xyz@example.org>", "Subject: Reminder", "", "Reply-To: approvals+body@x.org"]
            .joined(separator: newline)
        #expect(OutboxSender.replyToken(in: Data(raw.utf8)) == "abc234xyz")
        let none = ["From: x@example.org", "", "Reply-To: approvals+body@x.org"].joined(separator: newline)
        #expect(OutboxSender.replyToken(in: Data(none.utf8)) == nil, "a Reply-To in the body is not a header")
    }

    @Test func reminderTimesStayBeforeTheDeadlineAndWithinTheCount() {
        let policy = RequestMail.Policy(onTimeout: "reject", remindEvery: 600, reminders: 5, escalateTo: [], delegates: [],
                                        forbid: [], expiresAfter: 1800)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(policy.reminderTimes(from: start, dueAt: start.addingTimeInterval(1800)).map { $0.timeIntervalSince(start) } == [600, 1200])
        #expect(policy.reminderTimes(from: start, dueAt: nil).count == 5)
    }

    @Test func reminderMessageIDsAreDistinctPerRoundAndTokenAndKnownToTheImporter() {
        let a = ReminderMessageID.make(tokenHash: String(repeating: "a", count: 64), round: 1, requestMessageID: "<x@example.org>")
        let b = ReminderMessageID.make(tokenHash: String(repeating: "a", count: 64), round: 2, requestMessageID: "<x@example.org>")
        let c = ReminderMessageID.make(tokenHash: String(repeating: "b", count: 64), round: 1, requestMessageID: "<x@example.org>")
        #expect(Set([a, b, c]).count == 3)
        #expect(a.hasPrefix("<r1.") && a.hasSuffix("@example.org>"))
        // The form reminders already sent carry (16 hex digits of SHA-256 of the token hash, by
        // Python's hashlib): it must never change, or replies to them stop matching their thread.
        #expect(a == "<r1.ffe054fe7ae0cb6d@example.org>")
        #expect(ReminderMessageID.all(tokenHash: String(repeating: "a", count: 64), rounds: 2, requestMessageID: "<x@example.org>")
                == [MessageID.normalize(a), MessageID.normalize(b)])
    }
}
