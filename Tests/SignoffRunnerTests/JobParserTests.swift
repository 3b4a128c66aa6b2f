import Foundation
import Testing
@testable import SignoffRunner

struct JobParserTests {
    static let releaseNotes = """
    name: release-notes
    description: Draft release notes, have the editor approve them, publish.
    owner: ops@example.org
    schedule: "Mon *-*-* 06:00:00"
    input: { version: "1.2.3" }
    retry: { attempts: 3, backoff: 30s }
    steps:
      - id: draft
        shell: ["./scripts/draft.sh", "{{input.version}}"]
        timeout: 10m
      - id: review
        approval:
          reviewers: [editor@example.org]
          subject: "Release notes {{input.version}}"
          show: "{{steps.draft.stdout}}"
          on_reject: draft
          max_rounds: 3
          expires_after: 72h
      - id: publish
        shell: ["./scripts/publish.sh"]
    """

    /// The problems of `text`, read as the file named after its `name:` line.
    func problems(_ text: String, file: String? = nil) -> [Diagnostic] {
        let name = text.split(separator: "\n").first { $0.hasPrefix("name: ") }.map { String($0.dropFirst(6)) } ?? "t"
        return JobParser.check(text: text, file: file ?? "/jobs/\(name).yaml").1
    }

    @Test func readsTheIssueExampleAsWritten() throws {
        let job = try JobParser.parse(text: Self.releaseNotes, file: "/srv/jobs/release-notes.yaml")
        #expect(job.name == "release-notes")
        #expect(job.owner == "ops@example.org")
        #expect(job.input["version"] == .string("1.2.3"))
        #expect(job.retry == RetryPolicy(attempts: 3, backoff: 30))
        #expect(job.steps.map(\.id) == ["draft", "review", "publish"])
        #expect(job.steps[0].timeout == 600)
        guard case .approval(let a) = job.steps[1].kind else { Issue.record("review is not an approval"); return }
        #expect(a.onReject == "draft")
        #expect(a.maxRounds == 3)
        #expect(a.policy.expiresAfter == Double(72 * 3600))
        #expect(a.policy.reviewers == ["editor@example.org"])
        #expect(job.folder == "/srv/jobs")
        #expect(job.dependencies(of: "publish") == ["review"])
    }

    @Test func unknownKeySuggestsTheClosestAndGivesLineAndColumn() {
        let text = Self.releaseNotes.replacingOccurrences(of: "    timeout: 10m", with: "    timout: 10m")
        let found = problems(text)
        #expect(found.count == 1)
        let d = found.first
        #expect(d?.line == 10)
        #expect(d?.column == 5)
        #expect(d?.message.contains("unknown key `timout`") == true)
        #expect(d?.hint == "did you mean `timeout`?")
    }

    @Test func shellStringIsRejectedWithTheArgvToWrite() {
        let text = Self.releaseNotes.replacingOccurrences(of: #"shell: ["./scripts/publish.sh"]"#, with: "shell: ./scripts/publish.sh --now")
        let d = problems(text).first
        #expect(d?.message.contains("must be a list") == true)
        #expect(d?.hint == #"write `shell: ["./scripts/publish.sh", "--now"]`"#)
    }

    @Test func onRejectMustNameAnEarlierStep() {
        let text = Self.releaseNotes.replacingOccurrences(of: "on_reject: draft", with: "on_reject: publish")
        let d = problems(text).first
        #expect(d?.message.contains("must name a step that runs before `review`") == true)
        #expect(d?.line == 16)
    }

    @Test func placeholderOfAnUndeclaredInputSuggestsTheDeclaredOne() {
        let text = Self.releaseNotes.replacingOccurrences(of: "{{input.version}}\"]", with: "{{input.verison}}\"]")
        let d = problems(text).first
        #expect(d?.message.contains("{{input.verison}}") == true)
        #expect(d?.hint == "did you mean {{input.version}}?")
        #expect(d?.line == 9)
    }

    @Test func placeholderOfALaterStepIsRefused() {
        let text = Self.releaseNotes.replacingOccurrences(of: "show: \"{{steps.draft.stdout}}\"", with: "show: \"{{steps.publish.stdout}}\"")
        let d = problems(text).first
        #expect(d?.message.contains("does not run before `review`") == true)
    }

    @Test func placeholderFieldMustSuitTheStepKind() {
        let text = Self.releaseNotes.replacingOccurrences(of: "{{steps.draft.stdout}}", with: "{{steps.draft.text}}")
        let d = problems(text).first
        #expect(d?.message.contains("is not a field of a shell step") == true)
        #expect(d?.hint?.contains("{{steps.draft.stdout}}") == true)
    }

    @Test func badScheduleExplainsTheSystemdSyntax() {
        let text = Self.releaseNotes.replacingOccurrences(of: "\"Mon *-*-* 06:00:00\"", with: "\"every monday\"")
        let d = problems(text).first
        #expect(d?.message.contains("is not a systemd calendar expression") == true)
        #expect(d?.line == 4)
    }

    @Test(arguments: ["10 minutes later", "-5s", "ten"])
    func badDurationSaysHowToWriteOne(_ value: String) {
        let text = Self.releaseNotes.replacingOccurrences(of: "timeout: 10m", with: "timeout: \"\(value)\"")
        let d = problems(text).first
        #expect(d?.hint?.contains("30s, 10m, 72h") == true, "for \(value): \(String(describing: d))")
    }

    @Test func yamlSyntaxErrorHasAPosition() {
        let d = problems("name: x\nsteps:\n  - id: a\n    shell: [\"a\"\n").first
        #expect(d?.message.hasPrefix("YAML syntax error") == true)
        #expect((d?.line ?? 0) > 0)
    }

    @Test func fileNameMustMatchTheJobName() {
        let d = problems(Self.releaseNotes, file: "/jobs/other.yaml").first
        #expect(d?.message.contains("but its file is other.yaml") == true)
    }

    @Test func needsBuildsFanOutAndFanIn() throws {
        let job = try JobParser.parse(text: """
            name: fan
            steps:
              - id: a
                shell: [echo, a]
              - id: b
                needs: [a]
                shell: [echo, b]
              - id: c
                needs: [a]
                shell: [echo, "{{steps.a.stdout}}"]
              - id: d
                needs: [b, c]
                shell: [echo, "{{steps.b.stdout}} {{steps.c.json.x}}"]
            """, file: "/jobs/fan.yaml")
        #expect(job.dependents(of: "a").sorted() == ["b", "c"])
        #expect(job.dependencies(of: "d") == ["b", "c"])
        #expect(job.ancestors(of: "d") == ["a", "b", "c"])
    }

    @Test func circularNeedsAreRefused() {
        let found = problems("""
            name: t
            steps:
              - id: a
                needs: [b]
                shell: [echo]
              - id: b
                needs: [a]
                shell: [echo]
            """)
        #expect(found.contains { $0.message.contains("in a circle") })
    }

    @Test func everyPolicyKeyOfTheApprovalIssueIsAccepted() throws {
        let job = try JobParser.parse(text: """
            name: t
            steps:
              - id: make
                shell: [echo]
              - id: sign
                approval:
                  reviewers: [legal@example.org, finance@example.org]
                  quorum: 2
                  reject_on: any
                  expires_after: 72h
                  on_timeout: escalate
                  remind_every: 24h
                  reminders: 2
                  escalate_to: [head@example.org]
                  delegates: [deputy@example.org]
                  forbid: [requester]
              - id: size
                ask:
                  reviewers: [ops@example.org]
                  question: "Which size?"
                  type: choice
                  choices: [small, large]
              - id: summary
                llm: { system: "Be brief.", prompt: "{{steps.make.stdout}} {{steps.size.value}}", model: m, temperature: 0.2, max_tokens: 200 }
              - id: custom
                executor: { name: number-guess, with: { target: 42 } }
            """, file: "/jobs/t.yaml")
        guard case .approval(let a) = job.steps[1].kind else { Issue.record("not an approval"); return }
        #expect(a.policy.quorum == .count(2))
        #expect(a.policy.onTimeout == .escalate)
        #expect(a.policy.reminders == 2)
        #expect(a.policy.forbid == ["requester"])
        guard case .ask(let ask) = job.steps[2].kind else { Issue.record("not an ask"); return }
        #expect(ask.type == .choice)
        guard case .executor(let e) = job.steps[4].kind else { Issue.record("not an executor"); return }
        #expect(e.with["target"] == .number(42))
    }

    @Test func collectsEveryProblemInOnePass() {
        let found = problems("""
            name: t
            steps:
              - id: a
                shel: [echo]
              - id: b
                approval: { reviewers: [nobody], quorum: 5 }
            """)
        #expect(found.count >= 3, "\(found)")
    }

    @Test func onRejectThatWouldStallAJoinIsRefused() {
        let found = problems("""
            name: t
            steps:
              - id: a
                shell: [echo]
              - id: b
                needs: []
                shell: [echo]
              - id: join
                needs: [a, b]
                shell: [echo]
              - id: ok
                approval: { reviewers: [x@example.org], on_reject: a }
            """)
        #expect(found.contains { $0.message.contains("cannot loop back") && $0.message.contains("`b`") }, "\(found)")
    }
}
