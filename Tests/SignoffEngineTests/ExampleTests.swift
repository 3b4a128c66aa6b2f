import Foundation
import SignoffEngine
import SignoffExamples
import Testing

struct ExampleTests {
    // 6
    @Test func numberGuessingFindsTheNumberInThreeTries() async throws {
        let wf = try SeedExamples.guessingWorkflow(targetNumber: 42)
        var result = try await wf.run(10)
        #expect(try result.pendingRequests.first?.data(as: NumberSignal.self) == NumberSignal(hint: "below"))
        result = try await wf.resume(from: result.checkpoint, responses: [result.pendingRequests[0].id: 50])
        #expect(try result.pendingRequests.first?.data(as: NumberSignal.self) == NumberSignal(hint: "above"))
        // Through bytes, as a host restoring in another process would.
        let cp = try Checkpoint.decode(from: result.checkpoint.encoded())
        result = try await SeedExamples.guessingWorkflow(targetNumber: 42)
            .resume(from: cp, responses: [result.pendingRequests[0].id: .json(Data("42".utf8))])
        #expect(result.status == .idle)
        #expect(result.outputs(as: String.self) == ["42 found in 3 tries!"])
    }

    // 7
    @Test func formCollectorAsksTwiceAndKeepsTheNameBetween() async throws {
        let wf = try SeedExamples.formWorkflow()
        let first = try await wf.run("start")
        #expect(first.pendingRequests.map(\.id) == ["name"])
        #expect(try first.pendingRequests[0].data(as: NamePrompt.self).text == "Enter your name:")
        let second = try await wf.resume(from: first.checkpoint, responses: ["name": "Alice"])
        #expect(second.status == .waitingForInput)
        #expect(second.pendingRequests.map(\.id) == ["email"])
        #expect(try second.checkpoint.sharedState("name", as: String.self) == "Alice")
        let done = try await wf.resume(from: Checkpoint.decode(from: second.checkpoint.encoded()),
                                       responses: ["email": .json(Data("\"alice@example.com\"".utf8))])
        #expect(done.outputs(as: String.self) == ["Registered Alice with email alice@example.com"])
    }

    // 8
    @Test func workerReviewerLoopRegeneratesAfterRejectionThenEmitsApproved() async throws {
        let client = ScriptedChatClient(replies: ["draft one", "draft two"])
        let wf = try SeedExamples.contentReviewWorkflow(chatClient: client)
        let user = [ChatMessage(role: .user, text: "Why learn programming?")]
        let first = try await wf.run(user)
        #expect(first.status == .waitingForInput)
        let ask1 = try #require(first.pendingRequests.first)
        let review1 = try #require(try ask1.data(as: HumanReviewRequest.self).agentRequest)
        #expect(review1.agentMessages.map(\.text) == ["draft one"])

        let reject = ReviewResponse(requestID: review1.requestID, feedback: "Too vague; give reasons.", approved: false)
        let second = try await wf.resume(from: Checkpoint.decode(from: first.checkpoint.encoded()),
                                         responses: [ask1.id: .json(JSONEncoder().encode(reject))])
        let ask2 = try #require(second.pendingRequests.first)
        #expect(ask2.id != ask1.id)
        let review2 = try #require(try ask2.data(as: HumanReviewRequest.self).agentRequest)
        #expect(review2.requestID == review1.requestID)
        #expect(review2.agentMessages.map(\.text) == ["draft two"])

        let approve = ReviewResponse(requestID: review2.requestID, feedback: "Approved", approved: true)
        let done = try await wf.resume(from: second.checkpoint, responses: [ask2.id: approve])
        #expect(done.status == .idle)
        #expect(done.outputs(as: ChatMessage.self).map(\.text) == ["draft two"])
        #expect(done.outputs(as: ChatMessage.self).first?.role == .assistant)

        let calls = await client.calls
        #expect(calls.count == 2)
        #expect(calls[1].contains(ChatMessage(role: .system, text: "Too vague; give reasons.")))
        #expect(calls[1].map(\.text).contains("draft one"))
    }

    @Test func contentReviewAgentSurfacesTheReviewAsAFunctionCall() async throws {
        let client = ScriptedChatClient(replies: ["It builds problem-solving skills."])
        let agent = try SeedExamples.contentReviewAgent(chatClient: client)
        let response = try await agent.run("What is the importance of learning programming?")
        guard case .functionCall(let callID, let name, let arguments)? = response.last?.contents.first else {
            Issue.record("expected a function call, got \(response)")
            return
        }
        #expect(name == WorkflowAgent.requestInfoFunctionName)
        struct Args: Decodable { var request_id: String; var data: HumanReviewRequest }
        let args = try JSONDecoder().decode(Args.self, from: Data(arguments.utf8))
        #expect(args.request_id == callID)
        let requestID = try #require(args.data.agentRequest?.requestID)
        let decision = ReviewResponse(requestID: requestID, feedback: "Approved", approved: true)
        let result = String(decoding: try JSONEncoder().encode(decision), as: UTF8.self)
        let final = try await agent.run([ChatMessage(role: .tool, contents: [.functionResult(callID: callID, result: result)])])
        #expect(final.last?.text == "It builds problem-solving skills.")
        #expect(await agent.pendingRequestIDs.isEmpty)
    }

    @Test func seedExamplesAreRegisteredByName() throws {
        #expect(SeedExamples.all.map(\.name) == ["number-guessing", "form-collector", "approval-gate", "content-review"])
        let gate = try #require(SeedExamples.named("approval-gate"))
        #expect(try gate.make(SeedEnvironment()).startExecutorID == "approval_gate")
        #expect(throws: WorkflowError.self) { try SeedExamples.named("content-review")!.make(SeedEnvironment()) }
    }
}
