import Foundation
import Testing
@testable import SignoffMail

private let approval = ExpectedResponse.approval(rejectReasonRequired: true)

struct GrammarTests {
    @Test(arguments: [
        ("APPROVE", Decision.approve(comment: nil)),
        ("approved", .approve(comment: nil)),
        ("Approve: ship it", .approve(comment: "ship it")),
        ("**APPROVE**", .approve(comment: nil)),
        ("*Approved* - fine by me", .approve(comment: "fine by me")),
        ("__APPROVE__, thanks", .approve(comment: "thanks")),
        ("\u{200B}APPROVE\u{FEFF}", .approve(comment: nil)),
        ("ＡＰＰＲＯＶＥ：ｏｋ", .approve(comment: "ok")),
        ("APPROVE — fine", .approve(comment: "fine")),
        ("APPROVE. Nice work", .approve(comment: "Nice work")),
        ("REJECT: numbers are off", .reject(reason: "numbers are off")),
        ("rejected - see below\nthe totals\ndo not add up\n\n-- \nJane", .reject(reason: "see below\nthe totals\ndo not add up")),
        ("REJECT:\nline one\nline two\n> quoted", .reject(reason: "line one\nline two")),
        ("DELEGATE: deputy@example.org", .delegate(EmailAddress("deputy@example.org"))),
        ("delegate: Deputy <deputy@example.org>", .delegate(EmailAddress("deputy@example.org"))),
    ])
    func readsCommands(text: String, expected: Decision) {
        #expect(DecisionGrammar.parse(text, expecting: approval) == .decision(expected))
    }

    @Test(arguments: [
        "yes", "OK", "lgtm", "+1", "👍", "Looks good to me", "", "   \n  ",
        "don't approve", "Do not approve this", "APPROVE?", "Approve? not sure",
        "APPROVE REJECT", "APPROVE: actually no, REJECT", "APPROVE: I do not approve",
        "APPROVE\nREJECT: wait", "Approve this please", "REJECT", "REJECT:   ",
        "VALUE: 3",
    ])
    func ambiguousRepliesDecideNothing(text: String) {
        guard case .ambiguous = DecisionGrammar.parse(text, expecting: approval) else {
            Issue.record("\(text.debugDescription) decided: \(DecisionGrammar.parse(text, expecting: approval))")
            return
        }
    }

    @Test func rejectWithoutReasonIsAllowedWhenTheJobSaysSo() {
        #expect(DecisionGrammar.parse("REJECT", expecting: .approval(rejectReasonRequired: false)) == .decision(.reject(reason: nil)))
    }

    @Test(arguments: [
        ("VALUE: 42", ExpectedResponse.ValueType.number, DecisionValue.number(42)),
        ("value - 3.25", .number, .number(Decimal(string: "3.25")!)),
        ("42", .number, .number(42)),
        ("VALUE: Blue", .choice(["red", "blue"]), .choice("blue")),
        ("RED", .choice(["red", "blue"]), .choice("red")),
        ("VALUE: 2026-02-28", .date, .date("2026-02-28")),
        ("2026-03-01", .date, .date("2026-03-01")),
        ("VALUE: ship on Friday\nafter the review", .text, .text("ship on Friday\nafter the review")),
    ])
    func readsTypedValues(text: String, type: ExpectedResponse.ValueType, expected: DecisionValue) {
        #expect(DecisionGrammar.parse(text, expecting: .value(type)) == .decision(.value(expected)))
    }

    @Test(arguments: [
        ("VALUE: forty", ExpectedResponse.ValueType.number),
        ("VALUE: 1,5", .number),
        ("VALUE: green", .choice(["red", "blue"])),
        ("VALUE: 2026-02-30", .date),
        ("VALUE: 03/02/2026", .date),
        ("DELEGATE: not an address", .text),
    ])
    func valuesFailingTheirTypeAreInvalid(text: String, type: ExpectedResponse.ValueType) {
        guard case .invalidValue = DecisionGrammar.parse(text, expecting: .value(type)) else {
            Issue.record("\(text) gave \(DecisionGrammar.parse(text, expecting: .value(type)))")
            return
        }
    }

    @Test func bareWordsNeedATypeThatMakesThemUnambiguous() {
        guard case .ambiguous = DecisionGrammar.parse("green", expecting: .value(.choice(["red", "blue"]))) else { Issue.record("bare non-choice decided"); return }
        guard case .ambiguous = DecisionGrammar.parse("some text", expecting: .value(.text)) else { Issue.record("bare text decided"); return }
        guard case .ambiguous = DecisionGrammar.parse("APPROVE", expecting: .value(.number)) else { Issue.record("APPROVE decided a number"); return }
    }

    @Test func reasonsOverTheLimitAreTooLong() {
        let long = "REJECT: " + String(repeating: "x", count: 4001)
        guard case .tooLong = DecisionGrammar.parse(long, expecting: approval) else { Issue.record("4001-char reason accepted"); return }
        let ok = "REJECT: " + String(repeating: "x", count: 4000)
        #expect(DecisionGrammar.parse(ok, expecting: approval) == .decision(.reject(reason: String(repeating: "x", count: 4000))))
    }

    @Test func theReplyAboveMarkerAndQuotedRequestNeverDecide() {
        let reply = """
        Thanks, looking at it.

        -- reply above this line --
        APPROVE
        """
        let visible = ReplyExtractor.visibleText(reply)
        guard case .ambiguous = DecisionGrammar.parse(visible, expecting: approval) else { Issue.record("quoted APPROVE decided"); return }
    }
}

struct GrammarLineEndingTests {
    @Test func readsReasonsWithCRLFLineEnds() {
        #expect(DecisionGrammar.parse("REJECT: one\r\ntwo\r\n> quoted", expecting: .approval(rejectReasonRequired: true)) == .decision(.reject(reason: "one\ntwo")))
    }
}

/// The grammar skips NFKC for lines made of ASCII and the "stable" symbol ranges; this checks
/// against Foundation that NFKC really leaves every such scalar alone, alone and between letters.
struct GrammarNFKCShortcutTests {
    @Test func everyScalarOfTheShortcutRangesIsItsOwnNFKCFormInContext() {
        var checked = 0
        for range in DecisionGrammar.nfkcStableRanges {
            for value in range {
                guard let scalar = Unicode.Scalar(value) else { continue }
                #expect(scalar.properties.canonicalCombiningClass == .notReordered, "U+\(String(value, radix: 16))")
                for text in [String(scalar), "a" + String(scalar) + "e", "APPROVE: ok " + String(scalar) + String(scalar)] {
                    let nfkc = text.precomposedStringWithCompatibilityMapping
                    #expect(Array(nfkc.unicodeScalars) == Array(text.unicodeScalars), "U+\(String(value, radix: 16))")
                    #expect(DecisionGrammar.normalize(text) == text)
                }
                checked += 1
            }
        }
        #expect(checked > 1000)
    }

    @Test func linesOutsideTheShortcutStillGetNFKC() {
        // fullwidth letters and a ligature are folded; a zero-width space is removed
        #expect(DecisionGrammar.normalize("ＡＰＰＲＯＶＥ ✓") == "APPROVE ✓")
        #expect(DecisionGrammar.normalize("ﬁne ✓") == "fine ✓")
        #expect(DecisionGrammar.normalize("APPRO\u{200B}VE ✓") == "APPROVE ✓")
        #expect(DecisionGrammar.isNFKCStable("APPROVE: looks good ✓ 👍") == true)
        #expect(DecisionGrammar.isNFKCStable("APPROVE: café") == false)
    }
}
