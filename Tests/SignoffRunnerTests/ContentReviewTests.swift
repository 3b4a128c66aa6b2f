import Foundation
import Testing
import SignoffTestSupport
@testable import SignoffRunner

/// The seeds' content loop end to end through mail, against the local OpenAI-compatible server
/// (scripts/fake_llm_server.py): draft, reject with feedback, a regenerated draft whose request
/// carries the feedback, approve, publish.
@Suite(.serialized)
struct ContentReviewTests {
    @Test(arguments: Backend.allCases)
    func rejectedDraftIsRegeneratedWithTheFeedbackThenPublished(_ backend: Backend) async throws {
        let server = try await FakeLLMServer(replies: ["Signoff 2.0 is out.", "Signoff 2.0 is out, free for everyone."])
        defer { server.stop() }
        try withProduct(backend) { p in
            let config = try String(contentsOfFile: p.dir + "/signoff.yaml", encoding: .utf8)
                .replacingOccurrences(of: "# llm: { base_url: \"http://127.0.0.1:11434/v1\", model: llama3 }",
                                      with: "llm: { base_url: \"http://127.0.0.1:\(server.port)/v1\", model: test-model, api_key: test-key }")
            try config.write(toFile: p.dir + "/signoff.yaml", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: TestSupport.packageRoot + "/jobs/content-review.yaml",
                                             toPath: p.dir + "/jobs/content-review.yaml")
            let id = p.ok("enqueue", "content-review", "--input", "topic=Signoff 2.0")
            p.ok("run")
            #expect(p.runStatus(id) == "waiting")
            let first = try #require(p.requestMails().first)
            #expect(first.contains("Signoff 2.0 is out."))
            try p.reply(to: first, from: "editor@example.org", body: "REJECT: say that it is free")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "waiting")
            let second = try #require(p.requestMails().first { $0.contains("free for everyone") }, "no mail with the regenerated draft")

            let requests = server.recordedLines().compactMap {
                (try? JSONSerialization.jsonObject(with: $0) as? [String: Any])?["body"] as? [String: Any]
            }
            try #require(requests.count == 2, "the model was called \(requests.count) times")
            let messages = try #require(requests[1]["messages"] as? [[String: Any]])
            let texts = messages.compactMap { $0["content"] as? String }
            #expect(texts.contains("Signoff 2.0 is out."), "the rejected draft is in the conversation: \(texts)")
            #expect(texts.contains { $0.contains("say that it is free") }, "the feedback reaches the model: \(texts)")
            #expect(texts.contains { $0.contains("Please incorporate the feedback and regenerate the response.") })
            #expect(requests[1]["model"] as? String == "test-model")

            try p.reply(to: second, from: "editor@example.org", body: "APPROVE")
            p.ok("import")
            p.ok("run")
            #expect(p.runStatus(id) == "succeeded")
            let detail = try #require(p.json("show", id) as? [String: Any])
            let steps = try #require((detail["output"] as? [String: Any])?["steps"] as? [String: Any])
            #expect(((steps["publish"] as? [String: Any])?["stdout"] as? String)?.contains("free for everyone") == true)
            #expect((steps["draft"] as? [String: Any])?["promptTokens"] as? Int == 12)
        }
    }
}
