import Foundation
import Testing
@testable import SignoffRunner

struct ProcessRunnerTests {
    @Test func runsInTheGivenFolderWithTheGivenEnvironment() async throws {
        let dir = try TestSupport.scratch()
        let out = try await ProcessRunner.run(argv: ["/bin/sh", "-c", "pwd; echo $GREETING"], directory: dir,
                                              environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"], timeout: 10)
        let lines = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }
                == URL(fileURLWithPath: dir).resolvingSymlinksInPath().path)
        #expect(lines.last == "hello")
        #expect(out.exitCode == 0)
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let dir = try TestSupport.scratch()
        // The program starts a grandchild that would outlive it, then hangs.
        let script = "sleep 60 & echo $! > child.pid; sleep 60"
        let started = Date()
        let out = try await ProcessRunner.run(argv: ["/bin/sh", "-c", script], directory: dir,
                                              environment: ["PATH": "/usr/bin:/bin"], timeout: 0.5)
        #expect(out.timedOut)
        // The program would sleep 60 s; well under that proves the kill (the bound is loose for loaded CI machines).
        #expect(Date().timeIntervalSince(started) < 40, "the timeout did not stop the program")
        let pid = try #require(Int32(try String(contentsOfFile: dir + "/child.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Give the kernel a moment to reap, then the grandchild must be gone.
        var alive = true
        for _ in 0..<50 where alive {
            alive = kill(pid, 0) == 0 && !Self.isZombie(pid)
            if alive { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(!alive, "grandchild \(pid) survived the timeout")
    }

    /// A step's program gets stdin, stdout and stderr, nothing else of the worker's: not its
    /// database files, not its sockets, not the output pipe of a step started at the same moment
    /// (which would keep that step running until this program ended).
    @Test func aProgramInheritsNoDescriptorButItsStandardStreams() async throws {
        let dir = try TestSupport.scratch()
        let marker = dir + "/held-open-by-the-worker"
        let file = open(marker, O_CREAT | O_RDWR, 0o600)  // no O_CLOEXEC, as a library might open one
        try #require(file >= 0)
        defer { close(file) }
        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }

        let out = try await ProcessRunner.run(argv: ["/bin/sh", "-c", "cd /proc/$$/fd && for fd in *; do echo \"$fd $(readlink $fd)\"; done"],
                                              directory: dir, environment: ["PATH": "/usr/bin:/bin"], timeout: 10)
        let listing = String(decoding: out.stdout, as: UTF8.self)
        let open = listing.split(separator: "\n").compactMap { Int32($0.split(separator: " ").first ?? "") }
        #expect(out.exitCode == 0, "\(String(decoding: out.stderr, as: UTF8.self))")
        #expect(!listing.contains(marker), "the program inherited the worker's open file:\n\(listing)")
        #expect(!open.contains(file) && !open.contains(pipeEnds[0]) && !open.contains(pipeEnds[1]), "inherited:\n\(listing)")
        #expect(Set(open).isSuperset(of: [0, 1, 2]), "\(listing)")
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }

    @Test func capturedOutputIsCappedAndMarkedTruncated() async throws {
        let dir = try TestSupport.scratch()
        let out = try await ProcessRunner.run(argv: ["/bin/sh", "-c", "head -c 100000 /dev/zero"], directory: dir,
                                              environment: ["PATH": "/usr/bin:/bin"], timeout: 10, cap: 1000)
        #expect(out.stdout.count == 1000)
        #expect(out.stdoutTruncated)
        #expect(out.exitCode == 0, "the program must not block on a full pipe")
    }

    @Test func missingProgramSaysWhereItLooked() async throws {
        let dir = try TestSupport.scratch()
        await #expect {
            _ = try await ProcessRunner.run(argv: ["./scripts/nope.sh"], directory: dir, environment: [:], timeout: 1)
        } throws: { error in
            "\(error)".contains("\(dir)/scripts/nope.sh") && "\(error)".contains("chmod +x")
        }
    }

    @Test func exitStatusAndStderrAreReported() async throws {
        let out = try await ProcessRunner.run(argv: ["/bin/sh", "-c", "echo oops >&2; exit 7"], directory: "/",
                                              environment: ["PATH": "/usr/bin:/bin"], timeout: 10)
        #expect(out.exitCode == 7)
        #expect(String(decoding: out.stderr, as: UTF8.self) == "oops\n")
    }
}
