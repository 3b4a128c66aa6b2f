import Foundation
import SignoffTestSupport
import SignoffEngine
import SignoffExamples
import SignoffLLM
import Testing

/// The seed's content workflow driven as an agent (the `request_info` function-call bridge) over the
/// real OpenAIChatClient, against scripts/fake_llm_server.py; and the `content-agent` example binary.
struct AgentBridgeTests {
    static let prompt = "Write a haiku about batch jobs"

    /// The arguments of a `request_info` function call, as the agent encodes them.
    struct RequestInfoArgs: Decodable {
        var request_id: String
        var executor_id: String
        var data: HumanReviewRequest
    }

    static func client(_ server: FakeLLMServer) throws -> OpenAIChatClient {
        try OpenAIChatClient(configuration: LLMConfiguration(baseURL: server.baseURL + "/v1", model: "llama3.1", maxRetries: 0),
                             environment: [:])
    }

    /// The single `request_info` call among `messages`, with its decoded arguments.
    static func reviewCall(_ messages: [ChatMessage]) throws -> (callID: String, args: RequestInfoArgs) {
        let calls = messages.flatMap(\.contents).compactMap { c -> (String, String, String)? in
            if case .functionCall(let id, let name, let args) = c { (id, name, args) } else { nil }
        }
        try #require(calls.count == 1, "expected one function call, got \(messages)")
        #expect(calls[0].1 == WorkflowAgent.requestInfoFunctionName)
        return (calls[0].0, try JSONDecoder().decode(RequestInfoArgs.self, from: Data(calls[0].2.utf8)))
    }

    /// The tool message answering `callID` with the reviewer's decision.
    static func answer(_ callID: String, _ request: ReviewRequest, feedback: String, approved: Bool) throws -> [ChatMessage] {
        let decision = ReviewResponse(requestID: request.requestID, feedback: feedback, approved: approved)
        let result = String(decoding: try JSONEncoder().encode(decision), as: UTF8.self)
        return [ChatMessage(role: .tool, contents: [.functionResult(callID: callID, result: result)])]
    }

    static func messagesJSON(_ pairs: [(String, String)]) -> String {
        "[" + pairs.map { role, text in
            let escaped = String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
            return #"{"role":"\#(role)","content":\#(escaped)}"#
        }.joined(separator: ",") + "]"
    }

    @Test func draftSurfacesAsRequestInfoCallFeedbackRegeneratesInSeedShapeAndApprovalReturnsTheDraft() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"Jobs queue at midnight"},{"reply":"Jobs retry at midnight"}]"#)
        defer { server.stop() }
        let agent = try SeedExamples.contentReviewAgent(chatClient: try Self.client(server))

        // First call: the worker's draft comes back as a request_info call whose id is the pending request's.
        let first = try await agent.run(Self.prompt)
        let (callID, args) = try Self.reviewCall(first)
        #expect(await agent.pendingRequestIDs == [callID])
        #expect(args.request_id == callID)
        #expect(args.executor_id == "sub-worker-reviewer")
        let draft = try #require(args.data.agentRequest)
        #expect(draft.agentMessages.map(\.text) == ["Jobs queue at midnight"])
        #expect(draft.userMessages == [ChatMessage(role: .user, text: Self.prompt)])
        #expect(try server.requests().map(\.body) == [try JSONValue(parsing: """
            {"model":"llama3.1","messages":\(Self.messagesJSON([("system", "You are a helpful assistant. Be concise."), ("user", Self.prompt)]))}
            """)])

        // Feedback: the second request carries it the seed's way, and a new review is surfaced.
        let second = try await agent.run(try Self.answer(callID, draft, feedback: "Mention retries.", approved: false))
        let requests = try server.requests()
        try #require(requests.count == 2)
        #expect(requests[1].body == (try JSONValue(parsing: """
            {"model":"llama3.1","messages":\(Self.messagesJSON([
                ("system", "You are a helpful assistant. Be concise."), ("user", Self.prompt),
                ("assistant", "Jobs queue at midnight"),
                ("system", "Mention retries."),
                ("system", "Please incorporate the feedback and regenerate the response."),
                ("user", Self.prompt)]))}
            """)))
        let (secondCallID, secondArgs) = try Self.reviewCall(second)
        #expect(secondCallID != callID)
        #expect(await agent.pendingRequestIDs == [secondCallID])
        let redraft = try #require(secondArgs.data.agentRequest)
        #expect(redraft.agentMessages.map(\.text) == ["Jobs retry at midnight"])

        // Approval: the final assistant message holds the approved draft; no more calls, no LLM call.
        let final = try await agent.run(try Self.answer(secondCallID, redraft, feedback: "Approved", approved: true))
        #expect(final == [ChatMessage(role: .assistant, text: "Jobs retry at midnight")])
        #expect(await agent.pendingRequestIDs.isEmpty)
        #expect(try server.requests().count == 2)
    }

    @Test func firstCallFailingOnServerErrorDoesNotPoisonTheAgent() async throws {
        let server = try await FakeLLMServer(script: """
            [{"status":500,"body":{"error":{"message":"upstream exploded"}}},{"reply":"Jobs queue at midnight"}]
            """)
        defer { server.stop() }
        let agent = try SeedExamples.contentReviewAgent(chatClient: try Self.client(server))

        let error = await #expect(throws: (any Error).self) { try await agent.run(Self.prompt) }
        #expect(String(describing: error).contains("llm.server_error"), "\(String(describing: error))")
        #expect(await agent.pendingRequestIDs.isEmpty)

        let retried = try await agent.run(Self.prompt)
        let (callID, args) = try Self.reviewCall(retried)
        #expect(await agent.pendingRequestIDs == [callID])
        #expect(args.data.agentRequest?.agentMessages.map(\.text) == ["Jobs queue at midnight"])
        #expect(try server.requests().count == 2)
    }

    @Test func regenerationFailingDropsThatRunAndTheNextPromptStartsAFreshOne() async throws {
        let server = try await FakeLLMServer(script: """
            [{"reply":"Jobs queue at midnight"},{"status":503,"body":"down"},{"reply":"Cron wakes, jobs run"}]
            """)
        defer { server.stop() }
        let agent = try SeedExamples.contentReviewAgent(chatClient: try Self.client(server))

        let (callID, args) = try Self.reviewCall(try await agent.run(Self.prompt))
        let draft = try #require(args.data.agentRequest)
        await #expect(throws: (any Error).self) {
            try await agent.run(try Self.answer(callID, draft, feedback: "Mention retries.", approved: false))
        }
        #expect(await agent.pendingRequestIDs.isEmpty)
        // The failed run is gone: answering it again is refused with a WorkflowError, not replayed.
        await #expect(throws: WorkflowError.self) {
            try await agent.run(try Self.answer(callID, draft, feedback: "Approved", approved: true))
        }

        let fresh = try await agent.run("Write a haiku about cron")
        let (freshCallID, freshArgs) = try Self.reviewCall(fresh)
        #expect(freshCallID != callID)
        #expect(freshArgs.data.agentRequest?.agentMessages.map(\.text) == ["Cron wakes, jobs run"])
        let requests = try server.requests()
        try #require(requests.count == 3)
        // A fresh conversation: nothing of the failed run leaks into the new request.
        #expect(requests[2].body == (try JSONValue(parsing: """
            {"model":"llama3.1","messages":\(Self.messagesJSON([("system", "You are a helpful assistant. Be concise."),
                                                               ("user", "Write a haiku about cron")]))}
            """)))
    }

    // MARK: - The content-agent binary

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func contentAgentBinary() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("content-agent"),
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/content-agent"),
        ]
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url }
        throw FakeLLMServer.Failure(message: "content-agent is not built next to the tests (looked in \(candidates.map(\.path))); run scripts/test, which builds every product first")
    }

    /// Runs content-agent against `server` with stdin closed; its output goes to files (no pipe to fill).
    static func runContentAgent(_ arguments: [String], server: FakeLLMServer) async throws -> Run {
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("SIGNOFF_LLM_") && !$0.key.hasPrefix("OPENAI_") && !$0.key.hasPrefix("AZURE_OPENAI_")
        }
        env["SIGNOFF_LLM_BASE_URL"] = server.baseURL + "/v1"
        env["SIGNOFF_LLM_MODEL"] = "llama3.1"
        env["SIGNOFF_LLM_API_KEY"] = "sk-agent-secret-42"
        env["SIGNOFF_LLM_MAX_RETRIES"] = "0"
        let out = server.directory.appendingPathComponent("agent-\(UUID().uuidString).out")
        let err = server.directory.appendingPathComponent("agent-\(UUID().uuidString).err")
        let process = try Subprocess(try contentAgentBinary().path, arguments, environment: env,
                                     stdin: .null, stdout: .file(out.path), stderr: .file(err.path))
        guard let status = try await process.exit(timeout: .seconds(120)) else {
            process.terminate(SIGKILL)
            throw FakeLLMServer.Failure(message: "content-agent did not finish within 120 s")
        }
        return Run(status: status,
                   stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                   stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }

    @Test func contentAgentBinaryShowsDraftsSendsFeedbackAndPrintsTheApprovedContent() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"Jobs queue at midnight"},{"reply":"Jobs retry at midnight"}]"#)
        defer { server.stop() }

        let run = try await Self.runContentAgent(["--answer", "Mention retries.", "--answer", "APPROVE", Self.prompt], server: server)

        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stderr.isEmpty)
        let out = run.stdout
        let firstDraft = try #require(out.range(of: "Draft:\nJobs queue at midnight\n"), "\(out)")
        let feedback = try #require(out.range(of: "> Mention retries.\n"), "\(out)")
        let secondDraft = try #require(out.range(of: "Draft:\nJobs retry at midnight\n"), "\(out)")
        let approve = try #require(out.range(of: "> APPROVE\n"), "\(out)")
        #expect(firstDraft.upperBound <= feedback.lowerBound && feedback.upperBound <= secondDraft.lowerBound
                && secondDraft.upperBound <= approve.lowerBound)
        #expect(out.hasSuffix("Final Agent Response:\nJobs retry at midnight\n"), "\(out)")
        #expect(!out.contains("sk-agent-secret-42"))

        let requests = try server.requests()
        try #require(requests.count == 2)
        #expect(requests.allSatisfy { $0.header("Authorization") == "Bearer sk-agent-secret-42" })
        guard case .object(let body)? = requests[1].body, case .array(let messages)? = body["messages"] else {
            Issue.record("second request has no messages: \(String(describing: requests[1].body))")
            return
        }
        #expect(Array(messages.suffix(3)) == [
            .object(["role": .string("system"), "content": .string("Mention retries.")]),
            .object(["role": .string("system"), "content": .string("Please incorporate the feedback and regenerate the response.")]),
            .object(["role": .string("user"), "content": .string(Self.prompt)]),
        ])
    }

    @Test func contentAgentBinaryStopsWithAClearErrorWhenAnswersRunOutAndStdinIsClosed() async throws {
        let server = try await FakeLLMServer(script: #"[{"reply":"Jobs queue at midnight"}]"#)
        defer { server.stop() }

        let run = try await Self.runContentAgent([Self.prompt], server: server)

        #expect(run.status == 3)
        #expect(run.stdout.contains("Draft:\nJobs queue at midnight\n"))
        #expect(run.stderr.contains("pass --answer APPROVE or feedback text"), "\(run.stderr)")
        #expect(!run.stdout.contains("Final Agent Response"))
    }
}
