import Foundation
import SignoffTestSupport
import Testing

/// The tests' own way of starting programs: what keeps one test's long-lived server from holding
/// up another test's short-lived command.
struct SubprocessTests {
    /// A server a test leaves running must hold none of the descriptors of the commands other
    /// tests start meanwhile (their output pipes above all), or their ends are never seen.
    @Test func aChildInheritsNoDescriptorButItsStandardStreams() throws {
        let dir = try TestSupport.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/held-open-by-the-tests"
        let file = open(marker, O_CREAT | O_RDWR, 0o600)  // no O_CLOEXEC
        try #require(file >= 0)
        defer { close(file) }

        let run = try Subprocess.run("/bin/sh", ["-c", "cd /proc/$$/fd && for fd in *; do echo \"$fd $(readlink $fd)\"; done"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stdout.contains(marker), "the child inherited the tests' open file:\n\(run.stdout)")
        let open = run.stdout.split(separator: "\n").compactMap { Int32($0.split(separator: " ").first ?? "") }
        #expect(Set(open).isSuperset(of: [0, 1, 2]) && !open.contains(file), "\(run.stdout)")
    }

    /// A server started while another test's command has its output pipe open (Foundation makes
    /// pipes without close-on-exec) holds no copy of it: the command's reader sees end-of-file as
    /// soon as the command's end is closed, not when the server stops.
    @Test func aLongLivedChildDoesNotHoldAnotherCommandsPipe() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let server = try Subprocess("/bin/sh", ["-c", "read line"], stdin: .pipe)
        defer { server.closeStdin(); server.waitUntilExit() }
        close(ends[1])
        var ready = [pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)]
        let closed = poll(&ready, 1, 5_000) == 1
        #expect(closed, "the pipe stayed open: the server inherited its write end")
        var byte: UInt8 = 0
        if closed { #expect(read(ends[0], &byte, 1) == 0) }
        #expect(server.isRunning)
    }

    /// A command that never ends is killed, with its process group, and that is an error naming it.
    @Test func aStuckCommandIsKilledAndReported() throws {
        let started = ContinuousClock.now
        #expect {
            _ = try Subprocess.run("/bin/sh", ["-c", "sleep 60 & sleep 60"], timeout: .milliseconds(300))
        } throws: { error in
            "\(error)".contains("/bin/sh -c sleep 60 & sleep 60 did not finish within")
        }
        #expect(ContinuousClock.now - started < .seconds(30), "the kill did not end the command")
    }

    /// Input larger than a pipe holds reaches the child while its output is drained.
    @Test func largeInputAndOutputFlowTogether() throws {
        let input = Array(repeating: UInt8(ascii: "x"), count: 1 << 20)
        let run = try Subprocess.run("/bin/cat", [], input: input)
        #expect(run.status == 0)
        #expect(run.stdoutBytes.count == input.count)
    }
}
