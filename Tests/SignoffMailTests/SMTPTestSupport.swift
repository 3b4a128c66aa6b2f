import Foundation
import SignoffTestSupport

/// Stdlib Python scripts the mail tests run as references (SignoffTestSupport has the SMTP server).
enum MailTestEnvironment {
    /// Runs a stdlib Python script with `input` on stdin; returns stdout.
    static func runPython(script: String, input: [UInt8]) throws -> String {
        let result = try Subprocess.run(TestEnvironment.stdlibPython, ["-c", script], input: input)
        guard result.status == 0 else { throw TestFailure("python failed (\(result.status)): \(result.stderr)") }
        return result.stdout
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension SMTPServer {
    /// Waits (briefly) until `count` messages are in Maildir/new.
    func waitForDelivery(count: Int, timeout: Duration = .seconds(5)) async throws -> [[UInt8]] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let messages = try delivered()
            if messages.count >= count { return messages }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try delivered()
    }
}

/// A self-signed certificate for localhost/127.0.0.1, made with openssl into a temp dir.
struct TestCertificate {
    let certificate: String
    let key: String

    static func make() throws -> TestCertificate {
        let dir = try TestEnvironment.temporaryDirectory("cert")
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let result = try Subprocess.run("/usr/bin/env", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                          "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                                                          "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        guard result.status == 0 else { throw TestFailure("openssl could not make a test certificate: \(result.stderr)") }
        return TestCertificate(certificate: cert, key: key)
    }
}
