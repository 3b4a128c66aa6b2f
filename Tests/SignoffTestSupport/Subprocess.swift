#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SignoffRunner
import Synchronization

/// A child process for tests, started with `posix_spawn` and watched with `waitpid`.
///
/// Why not Foundation's `Process`: on Linux it learns that a child ended when a socket the child
/// inherited reaches end-of-file, and it decides which descriptors a child must not inherit from a
/// list of the open descriptors taken before it spawns. Two tests starting processes at the same
/// moment can therefore leak one child's socket (or a pipe, which Foundation creates without
/// close-on-exec) into the other child. When that other child lives long (an SMTP server, a
/// fake LLM server, a `signoff worker`), the first process's end is never seen, `waitUntilExit`
/// never returns, and with every thread of the cooperative pool stuck that way the whole test run
/// hangs. Here children are started by the product's own `ProcessRunner.spawn` (close-on-exec
/// pipes; the child closes everything above stderr as it starts), so nothing leaks, and the end of
/// a child is read from `waitpid`, which nothing can hold up.
public final class Subprocess: Sendable {
    public enum Input: Sendable { case null, pipe }
    public enum Output: Sendable {
        case null, pipe, inherit
        /// Appended to the file, created when missing.
        case file(String)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// What `run` returns.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutBytes: [UInt8]
    }

    public let pid: pid_t
    public let name: String
    private let ends: Mutex<(stdin: Int32, stdout: Int32, stderr: Int32)>
    /// The raw wait status once reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` (a path, or a name looked up on PATH) with `arguments`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                directory: String? = nil, stdin: Input = .null, stdout: Output = .null, stderr: Output = .inherit) throws {
        name = (executable as NSString).lastPathComponent
        var parentEnds: [Int32] = [-1, -1, -1]
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        func stream(_ target: Int, _ output: Output) throws -> ProcessRunner.Stream {
            switch output {
            case .null: return .null
            case .inherit: return .inherit
            case .file(let path): return .file(path)
            case .pipe:
                let p = try ProcessRunner.closeOnExecPipe()
                parentEnds[target] = p.read
                childEnds.append(p.write)
                return .descriptor(p.write)
            }
        }
        var input = ProcessRunner.Stream.null
        if case .pipe = stdin {
            Self.ignoreBrokenPipes
            let p = try ProcessRunner.closeOnExecPipe()
            parentEnds[0] = p.write
            childEnds.append(p.read)
            input = .descriptor(p.read)
        }
        let pid: pid_t
        do {
            // The product's own spawn: close-on-exec pipes, and nothing above stderr inherited.
            pid = try ProcessRunner.spawn(executable: executable, argv: [executable] + arguments,
                                          environment: environment ?? ProcessInfo.processInfo.environment, directory: directory,
                                          stdin: input, stdout: try stream(1, stdout), stderr: try stream(2, stderr))
        } catch {
            parentEnds.filter { $0 >= 0 }.forEach { close($0) }
            throw error
        }
        self.pid = pid
        ends = Mutex((parentEnds[0], parentEnds[1], parentEnds[2]))
    }

    deinit {
        let open = ends.withLock { [$0.stdin, $0.stdout, $0.stderr] }
        open.filter { $0 >= 0 }.forEach { close($0) }
        // Reap a child that ended unseen so it leaves no zombie.
        if reaped.withLock({ $0 == nil }) { var status: Int32 = 0; _ = waitpid(pid, &status, WNOHANG) }
    }

    // MARK: Status

    /// Reaps the child if it has ended; never blocks.
    private func poll() -> Int32? {
        reaped.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { status = raw }
            return status
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// The exit code, or the number of the signal that ended it (as Foundation's `Process` has it);
    /// nil while it runs.
    public var terminationStatus: Int32? {
        poll().map { raw in (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : raw & 0x7f }
    }

    /// True when a signal ended it.
    public var endedBySignal: Bool { poll().map { ($0 & 0x7f) != 0 } ?? false }

    public func terminate(_ signal: Int32 = SIGTERM) {
        if isRunning { _ = kill(pid, signal) }
    }

    /// Blocks until the child ends; returns `terminationStatus`.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        while true {
            if let status = terminationStatus { return status }
            usleep(2_000)
        }
    }

    /// Waits without holding a thread; nil when `timeout` passes first.
    public func exit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = terminationStatus { return status }
            try await Task.sleep(for: .milliseconds(10))
        }
        return terminationStatus
    }

    // MARK: Pipes

    /// Writes to the child's stdin (a `.pipe`).
    public func write(_ bytes: [UInt8]) throws {
        let fd = ends.withLock { $0.stdin }
        guard fd >= 0 else { throw Failure("\(name): stdin is not an open pipe") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw Failure("\(name): writing to stdin: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Closes the child's stdin, which many programs read as "stop".
    public func closeStdin() {
        let fd = ends.withLock { ends in defer { ends.stdin = -1 }; return ends.stdin }
        if fd >= 0 { close(fd) }
    }

    /// The read end of the child's stdout (a `.pipe`), handed over: the caller closes it.
    public func takeStdout() -> Int32 {
        ends.withLock { ends in defer { ends.stdout = -1 }; return ends.stdout }
    }

    /// Reads the child's stdout up to the next newline (blocking); nil at end of file.
    public func readLine() -> String? {
        let fd = ends.withLock { $0.stdout }
        guard fd >= 0 else { return nil }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    // MARK: Run to completion

    /// Runs a program to its end with `input` on stdin, capturing stdout and stderr. Both pipes are
    /// drained together (and stdin fed) with `poll`, so a chatty child never blocks on a full pipe.
    /// A program still running after `timeout` is killed with its process group, and that is an
    /// error naming it: one stuck program fails its test instead of holding up the suite.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           directory: String? = nil, input: [UInt8]? = nil, timeout: Duration = .seconds(300)) throws -> Result {
        let child = try Subprocess(executable, arguments, environment: environment, directory: directory,
                                   stdin: input == nil ? .null : .pipe, stdout: .pipe, stderr: .pipe)
        let (inFD, outFD, errFD) = child.ends.withLock { ends in
            defer { ends = (-1, -1, -1) }
            return (ends.stdin, ends.stdout, ends.stderr)
        }
        var pending = input ?? []
        var written = 0
        var writeFD = inFD
        if writeFD >= 0 {
            _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
            if pending.isEmpty { close(writeFD); writeFD = -1 }
        }
        var readFDs = [outFD, errFD]
        var captured: [[UInt8]] = [[], []]
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        var killed = false
        while readFDs.contains(where: { $0 >= 0 }) || writeFD >= 0 {
            var fds = readFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0))
            let left = deadline - ContinuousClock.now
            if left <= .zero && !killed {
                killed = true
                _ = kill(-child.pid, SIGKILL)  // the child leads a process group of its own
            }
            // A descendant that left the group may hold the pipes: stop reading them.
            if killed && left < .seconds(-5) {
                (readFDs + [writeFD]).filter { $0 >= 0 }.forEach { close($0) }
                break
            }
            let wait = killed ? 1000 : Int32(min(left.components.seconds * 1000 + 1, 60_000))
            let ready = Glibc.poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 { if errno == EINTR { continue }; break }
            if ready == 0 { continue }
            for i in 0..<2 where readFDs[i] >= 0 && fds[i].revents != 0 {
                let n = read(readFDs[i], &buffer, buffer.count)
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if n <= 0 { close(readFDs[i]); readFDs[i] = -1; continue }
                captured[i].append(contentsOf: buffer[0..<n])
            }
            if writeFD >= 0 && fds[2].revents != 0 {
                let n = pending.withUnsafeBytes { Glibc.write(writeFD, $0.baseAddress! + written, pending.count - written) }
                if n > 0 { written += n }
                // Done, or the child closed its stdin (EPIPE): no more to give it.
                if written == pending.count || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    close(writeFD); writeFD = -1; pending = []
                }
            }
        }
        let status = child.waitUntilExit()
        if killed {
            throw Failure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) and was killed; its stderr: \(String(decoding: captured[1], as: UTF8.self))")
        }
        return Result(status: status, stdout: String(decoding: captured[0], as: UTF8.self),
                      stderr: String(decoding: captured[1], as: UTF8.self), stdoutBytes: captured[0])
    }

    /// A write to the stdin of a child that has ended fails with EPIPE instead of killing the tests.
    static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
}
