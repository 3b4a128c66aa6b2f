import Foundation
import Synchronization
import Testing
@testable import SignoffRunner

/// Whole-product tests: the built `signoff` binary, driven as a user would, on SQLite and PostgreSQL.
@Suite(.serialized)
struct ProductTests {
    @Test(arguments: Backend.allCases)
    func approvalByMailReplyRunsTheJobToTheEnd(_ backend: Backend) throws {
        try withProduct(backend) { p in
            let id = p.ok("enqueue", "release-notes", "--input", "version=2.0.0")
            #expect(!id.isEmpty)
            #expect(p.runStatus(id) == "queued")
            p.ok("run")
            #expect(p.runStatus(id) == "waiting")
            let mails = p.requestMails()
            try #require(mails.count == 1, "expected one request mail, found \(mails.count)")
            #expect(mails[0].contains("To: editor@example.org"))
            #expect(mails[0].contains("Reply-To: approvals+"))
            #expect(mails[0].contains("Release notes for version 2.0.0"))
            let pending = try #require(p.json("pending") as? [[String: Any]])
            #expect(pending.count == 1)
            #expect(pending.first?["step"] as? String == "review")

            try p.reply(to: mails[0], from: "editor@example.org", body: "APPROVE: looks good")
            #expect(p.ok("import").contains("1 applied"))
            let archived = try FileManager.default.contentsOfDirectory(atPath: p.dir + "/var/archive")
            #expect(archived.count == 1, "the reply is filed in `archive:` of signoff.yaml: \(archived)")
            #expect(p.runStatus(id) == "queued")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
            #expect(p.outbox().contains { $0.contains("To: editor@example.org") && !$0.contains("Reply-To: approvals+") },
                    "the reviewer gets a confirmation")

            let detail = try #require(p.json("show", id) as? [String: Any])
            let requests = try #require(detail["requests"] as? [[String: Any]])
            let votes = try #require(requests.first?["votes"] as? [[String: Any]])
            #expect(votes.first?["reviewer"] as? String == "editor@example.org")
            #expect(votes.first?["channel"] as? String == "mail")
            #expect((votes.first?["via"] as? String)?.hasPrefix("reply-") == true, "the vote names the reply's Message-ID")
            let output = try #require((detail["output"] as? [String: Any])?["steps"] as? [String: Any])
            let publish = try #require(output["publish"] as? [String: Any])
            #expect((publish["stdout"] as? String)?.contains("published release notes 2.0.0") == true)
            let history = p.ok("history")
            #expect(history.contains(id) && history.contains("succeeded"))
        }
    }

    @Test(arguments: Backend.allCases)
    func rejectionGoesBackWithFeedbackThenApprovalFinishes(_ backend: Backend) throws {
        try withProduct(backend) { p in
            let id = p.ok("enqueue", "release-notes")
            p.ok("run")
            try p.reply(to: try #require(p.requestMails().first), from: "editor@example.org",
                        body: "REJECT: mention the new CLI")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "waiting")
            let mails = p.requestMails()
            try #require(mails.count == 2, "expected a second request mail after the rejection")
            let second = try #require(mails.first { $0.contains("Revised after review") })
            #expect(second.contains("mention the new CLI"), "the redrafted notes carry the feedback")
            try p.reply(to: second, from: "editor@example.org", body: "APPROVE")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
        }
    }

    @Test(arguments: Backend.allCases)
    func rejectionWithoutOnRejectEndsTheRunAsRejected(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try p.writeJob("gate", """
                name: gate
                steps:
                  - id: ask
                    approval: { reviewers: [boss@example.org], subject: "Go?" }
                  - id: after
                    shell: ["touch", "after-ran"]
                """)
            let id = p.ok("enqueue", "gate")
            p.ok("run")
            try p.reply(to: try #require(p.requestMails().first), from: "boss@example.org", body: "REJECT: not this week")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "rejected")
            #expect(!FileManager.default.fileExists(atPath: p.dir + "/jobs/after-ran"), "a step after the rejection ran")
            let run = (p.json("history") as? [[String: Any]])?.first
            #expect((run?["error"] as? String)?.contains("not this week") == true)
        }
    }

    @Test(arguments: Backend.allCases)
    func failingStepIsRetriedThenFailsThenRerunSucceeds(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try p.writeScript("flaky.sh", """
                #!/bin/sh
                echo attempt >> attempts.log
                if [ -f fixed ]; then echo '{"ok": true}'; exit 0; fi
                echo "the upstream server is down" >&2
                exit 3
                """)
            try p.writeJob("flaky", """
                name: flaky
                retry: { attempts: 3, backoff: 0s }
                steps:
                  - id: fetch
                    shell: ["./scripts/flaky.sh"]
                  - id: use
                    shell: ["echo", "{{steps.fetch.json.ok}}"]
                """)
            let id = p.ok("enqueue", "flaky")
            p.ok("run")
            #expect(p.runStatus(id) == "failed")
            let attempts = try String(contentsOfFile: p.dir + "/jobs/attempts.log", encoding: .utf8)
            #expect(attempts.split(separator: "\n").count == 3, "the step ran \(attempts.split(separator: "\n").count) times")
            let failed = (p.json("history") as? [[String: Any]])?.first { $0["id"] as? String == id }
            let error = failed?["error"] as? String ?? ""
            #expect(error.contains("exited with status 3") && error.contains("the upstream server is down"), "error: \(error)")

            _ = FileManager.default.createFile(atPath: p.dir + "/jobs/fixed", contents: Data())
            let again = p.ok("rerun", id)
            #expect(again != id)
            p.ok("run")
            #expect(p.runStatus(again) == "succeeded")
            let rerun = (p.json("history") as? [[String: Any]])?.first { $0["id"] as? String == again }
            #expect(rerun?["rerunOf"] as? String == id)
            #expect(rerun?["attempt"] as? Int == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func independentStepsRunInParallelAndJoin(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try p.writeScript("span.sh", """
                #!/bin/sh
                date +%s.%N > "$1.start"
                sleep 1
                date +%s.%N > "$1.end"
                echo "$1"
                """)
            try p.writeJob("fan", """
                name: fan
                steps:
                  - id: prepare
                    shell: ["echo", "ready"]
                  - id: left
                    needs: [prepare]
                    shell: ["./scripts/span.sh", "left"]
                  - id: right
                    needs: [prepare]
                    shell: ["./scripts/span.sh", "right"]
                  - id: join
                    needs: [left, right]
                    shell: ["echo", "{{steps.left.stdout}}+{{steps.right.stdout}}"]
                """)
            let id = p.ok("enqueue", "fan")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
            func time(_ name: String) throws -> Double {
                try #require(Double(try String(contentsOfFile: p.dir + "/jobs/" + name, encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            let (ls, le, rs, re) = (try time("left.start"), try time("left.end"), try time("right.start"), try time("right.end"))
            #expect(ls < re && rs < le, "left [\(ls), \(le)] and right [\(rs), \(re)] did not overlap")
            let detail = try #require(p.json("show", id) as? [String: Any])
            let steps = try #require((detail["output"] as? [String: Any])?["steps"] as? [String: Any])
            #expect(((steps["join"] as? [String: Any])?["stdout"] as? String)?.contains("left\n+right") == true)
        }
    }

    @Test(arguments: Backend.allCases)
    func errorsNameTheProblemAndExitWithTheDocumentedCode(_ backend: Backend) throws {
        try withProduct(backend) { p in
            // Bad job file: usage (2), with file:line:column and a suggestion.
            try p.writeJob("broken", "name: broken\nsteps:\n  - id: a\n    shel: [echo]\n")
            let check = p.signoff("jobs", "check")
            #expect(check.status == 2)
            #expect(check.stderr.contains("broken.yaml:4:5: unknown key `shel`"), "\(check.stderr)")
            #expect(check.stderr.contains("did you mean `shell`?"))
            try FileManager.default.removeItem(atPath: p.dir + "/jobs/broken.yaml")

            // Unknown job: not found (3), with a suggestion.
            let job = p.signoff("enqueue", "release-note")
            #expect(job.status == 3)
            #expect(job.stderr.contains("no job named `release-note`") && job.stderr.contains("did you mean `release-notes`?"), "\(job.stderr)")

            // Unknown input: usage (2).
            let input = p.signoff("enqueue", "release-notes", "--input", "verson=1")
            #expect(input.status == 2)
            #expect(input.stderr.contains("did you mean `version`?"), "\(input.stderr)")

            // Unknown run and request: not found (3).
            let show = p.signoff("show", "nosuchrun")
            #expect(show.status == 3)
            #expect(show.stderr.contains("no run with id `nosuchrun`"))
            let respond = p.signoff("respond", "nosuchrequest", "--approve", "--as", "a@example.org")
            #expect(respond.status == 3)
            #expect(respond.stderr.contains("signoff pending"))

            // Bad command line: usage (2).
            let usage = p.signoff("respond", "x", "--as", "a@example.org")
            #expect(usage.status == 2)
            #expect(usage.stderr.contains("exactly one of --approve"))

            // Rerun of a run that is waiting: conflict (4).
            let id = p.ok("enqueue", "release-notes")
            p.ok("run")
            let rerun = p.signoff("rerun", id)
            #expect(rerun.status == 4)
            #expect(rerun.stderr.contains("is waiting") && rerun.stderr.contains("only failed, cancelled or expired runs can be rerun"), "\(rerun.stderr)")

            // Answering a decided request: conflict (4).
            let request = try #require((p.json("pending") as? [[String: Any]])?.first?["id"] as? String)
            p.ok("respond", request, "--approve", "--as", "editor@example.org")
            let twice = p.signoff("respond", request, "--reject", "too late", "--as", "editor@example.org")
            #expect(twice.status == 4)

            // Cancel of a finished run: conflict (4).
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
            #expect(p.signoff("cancel", id).status == 4)
        }
    }

    @Test(arguments: Backend.allCases)
    func seedExampleJobRunsThroughItsRegisteredWorkflow(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try FileManager.default.copyItem(atPath: TestSupport.packageRoot + "/jobs/approval-gate.yaml",
                                             toPath: p.dir + "/jobs/approval-gate.yaml")
            let id = p.ok("enqueue", "approval-gate", "--input", "operation=restart the cache")
            p.ok("run")
            #expect(p.runStatus(id) == "waiting")
            let mail = try #require(p.requestMails().first)
            #expect(mail.contains("restart the cache"))
            try p.reply(to: mail, from: "operator@example.org", body: "APPROVE")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
            let detail = try #require(p.json("show", id) as? [String: Any])
            let steps = try #require((detail["output"] as? [String: Any])?["steps"] as? [String: Any])
            #expect(((steps["report"] as? [String: Any])?["stdout"] as? String).map { $0.contains("Approved:") && $0.contains("restart the cache") } == true)
        }
    }

    @Test(arguments: Backend.allCases)
    func cancelWithdrawsTheRequestAndMetricsCountIt(_ backend: Backend) throws {
        try withProduct(backend) { p in
            let id = p.ok("enqueue", "release-notes")
            p.ok("run")
            let metrics = p.ok("metrics")
            #expect(metrics.contains("signoff_pending_requests 1"))
            #expect(metrics.contains("signoff_runs{status=\"waiting\"} 1"))
            p.ok("cancel", id, "--reason", "wrong version")
            #expect(p.runStatus(id) == "cancelled")
            #expect((p.json("pending") as? [Any])?.isEmpty == true)
            #expect(p.ok("metrics").contains("signoff_pending_requests 0"))
            #expect(p.ok("audit", "verify", id).contains("chain intact"))
            #expect(p.ok("send").contains("0 sent"), "nothing left to send")
            let jobs = try #require(p.json("jobs", "list") as? [[String: Any]])
            #expect(jobs.map { $0["name"] as? String } == ["release-notes"])
            #expect(p.ok("history", "--status", "cancelled", "--since", "1h").contains(id))
        }
    }

    @Test func selfApprovalIsRefusedByMailAndByTheCommandLine() throws {
        try withProduct(.sqlite) { p in
            try p.writeJob("sod", """
                name: sod
                steps:
                  - id: sign
                    approval: { reviewers: [alice@example.org, bob@example.org], forbid: [requester] }
                """)
            let id = p.ok("enqueue", "sod", "--as", "alice@example.org")
            p.ok("run")
            let mail = try #require(p.requestMails().first { $0.contains("To: alice@example.org") })
            try p.reply(to: mail, from: "alice@example.org", body: "APPROVE")
            #expect(p.ok("import").contains("invalid_value"))
            #expect(p.runStatus(id) == "waiting")
            let cli = p.signoff("respond", try #require((p.json("pending") as? [[String: Any]])?.first?["id"] as? String),
                                "--approve", "--as", "alice@example.org")
            #expect(cli.status == 4)
            #expect(cli.stderr.contains("enqueued the run"))
            let request = try #require((p.json("pending") as? [[String: Any]])?.first?["id"] as? String)
            p.ok("respond", request, "--approve", "--as", "bob@example.org")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
        }
    }

    @Test(arguments: Backend.allCases)
    func rerunFromCheckpointSkipsTheStepsThatHadFinished(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try p.writeScript("count.sh", "#!/bin/sh\necho run >> first.log\necho counted\n")
            try p.writeScript("second.sh", "#!/bin/sh\n[ -f fixed ] || { echo broken >&2; exit 1; }\necho \"run $SIGNOFF_RUN_ID\"\n")
            try p.writeJob("two", """
                name: two
                steps:
                  - id: first
                    shell: ["./scripts/count.sh"]
                  - id: second
                    shell: ["./scripts/second.sh"]
                """)
            let id = p.ok("enqueue", "two")
            p.ok("run")
            #expect(p.runStatus(id) == "failed")
            _ = FileManager.default.createFile(atPath: p.dir + "/jobs/fixed", contents: Data())
            let again = p.ok("rerun", id, "--from-checkpoint")
            p.ok("run")
            #expect(p.runStatus(again) == "succeeded")
            let log = try String(contentsOfFile: p.dir + "/jobs/first.log", encoding: .utf8)
            #expect(log.split(separator: "\n").count == 1, "the first step ran again")
            let detail = try #require(p.json("show", again) as? [String: Any])
            let steps = try #require((detail["output"] as? [String: Any])?["steps"] as? [String: Any])
            #expect(((steps["second"] as? [String: Any])?["stdout"] as? String)?.contains("run \(again)") == true,
                    "steps see the new run's id")
        }
    }

    @Test(arguments: Backend.allCases)
    func twoRunnersSharingTheDatabaseRunEachRunOnce(_ backend: Backend) throws {
        try withProduct(backend) { p in
            try p.writeScript("log.sh", "#!/bin/sh\necho \"$SIGNOFF_RUN_ID\" >> runs.log\nsleep 0.1\n")
            try p.writeJob("tick", "name: tick\nsteps:\n  - id: log\n    shell: [\"./scripts/log.sh\"]\n")
            var ids: [String] = []
            for _ in 0..<12 { ids.append(p.ok("enqueue", "tick")) }
            // Two runner processes at once, as on two hosts.
            let results = Mutex<[TestSupport.ProcessResult]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                let r = p.signoff("run", "--concurrency", "3")
                results.withLock { $0.append(r) }
            }
            for r in results.withLock({ $0 }) { #expect(r.status == 0, "\(r.stderr)") }
            let log = try String(contentsOfFile: p.dir + "/jobs/runs.log", encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(log.sorted() == ids.sorted(), "each run exactly once; log: \(log.count) lines for \(ids.count) runs")
            for id in ids { #expect(p.runStatus(id) == "succeeded") }
        }
    }
}
