import Foundation
import Testing
@testable import SignoffMail
import SignoffTestSupport

/// Compares the text part this reader picks and decodes with what Python's `email` package
/// (`get_body(('plain', 'html')).get_content()`) gives, for every corpus file.
struct MIMEDifferentialTests {
    static let script = #"""
    import email, email.policy, json, sys
    out = {}
    for path in sys.argv[1:]:
        with open(path, 'rb') as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        body = msg.get_body(preferencelist=('plain', 'html'))
        if body is None:
            out[path] = None
            continue
        try:
            text = body.get_content()
        except Exception as e:
            text = 'ERROR ' + repr(e)
        out[path] = {'type': body.get_content_type(), 'text': text}
    json.dump(out, sys.stdout)
    """#

    @Test func extractedTextMatchesPythonsEmailPackage() throws {
        let python = TestEnvironment.stdlibPython
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-diff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var paths: [String: String] = [:]
        for (n, file) in CorpusTests.allFiles.enumerated() {
            let url = dir.appendingPathComponent("\(n).eml")
            try Data(try CorpusTests.delivered(file)).write(to: url)
            paths[url.path] = file
        }
        let scriptURL = dir.appendingPathComponent("extract.py")
        try Self.script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let run = try Subprocess.run(python, [scriptURL.path] + paths.keys.sorted())
        #expect(run.status == 0, "\(run.stderr)")
        let output = Data(run.stdoutBytes)
        let results = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        #expect(results.count == CorpusTests.allFiles.count)

        var compared = 0
        for (path, file) in paths.sorted(by: { $0.value < $1.value }) {
            let message = try MIMEMessage.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            let part = message.textPart()
            guard let py = results[path] as? [String: Any] else {
                #expect(part == nil, "\(file): Python found no text part, Signoff found \(part?.mimeType ?? "")")
                continue
            }
            let p = try #require(part, "\(file): Signoff found no text part, Python found \(py["type"] ?? "")")
            #expect(p.mimeType == py["type"] as? String, "\(file)")
            let ours = Charsets.decode(p.decodedBody(), charset: p.contentType["charset"])
                .replacingOccurrences(of: "\r\n", with: "\n")
            let theirs = ((py["text"] as? String) ?? "").replacingOccurrences(of: "\r\n", with: "\n")
            #expect(Self.comparable(ours) == Self.comparable(theirs), "\(file): texts differ")
            compared += 1
        }
        #expect(compared == CorpusTests.allFiles.count)
    }

    /// Python adds a final newline when a part lacks one; trailing whitespace is not content.
    static func comparable(_ s: String) -> String {
        var t = s
        while t.last?.isWhitespace == true { t.removeLast() }
        return t
    }
}
