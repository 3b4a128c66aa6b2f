import Foundation
import SignoffEngine
import Testing

struct AgentTests {
    // 22
    @Test func requestBecomesAFunctionCallAResultResumesAndAFailureDoesNotPoison() async throws {
        let wf = try WorkflowBuilder(name: "agent").addExecutor(FunctionExecutor(id: "start") { h in
            h.on([ChatMessage].self) { msgs, ctx in
                let text = msgs.last?.text ?? ""
                if text == "fail" { throw WorkflowError(.executorFailed, "asked to fail") }
                try ctx.requestInfo("approve '\(text)'?", responseType: String.self)
            }
            h.onResponse(to: String.self, String.self) { q, answer, ctx in try ctx.yieldOutput("\(q) => \(answer)") }
            h.yields(String.self)
        }).setStart("start").build()
        let agent = WorkflowAgent(workflow: wf)

        await #expect { try await agent.run("fail") } throws: { ($0 as? WorkflowError)?.code == .executorFailed }

        let first = try await agent.run("deploy to prod")
        #expect(first.count == 1)
        #expect(first[0].role == .assistant)
        guard case .functionCall(let callID, let name, let arguments)? = first[0].contents.first else {
            Issue.record("expected a function call, got \(first)")
            return
        }
        #expect(name == "request_info")
        struct Args: Decodable { var request_id: String; var data: String; var response_type: String }
        let args = try JSONDecoder().decode(Args.self, from: Data(arguments.utf8))
        #expect(args.request_id == callID)
        #expect(args.data == "approve 'deploy to prod'?")
        #expect(args.response_type == "String")
        #expect(await agent.pendingRequestIDs == [callID])

        await #expect { try await agent.run([ChatMessage(role: .tool, contents: [.functionResult(callID: "bogus", result: "yes")])]) } throws: {
            ($0 as? WorkflowError)?.code == .agentInput
        }
        let second = try await agent.run([ChatMessage(role: .tool, contents: [.functionResult(callID: callID, result: "yes")])])
        #expect(second.map(\.text) == ["approve 'deploy to prod'? => yes"])
        #expect(await agent.pendingRequestIDs.isEmpty)

        // After a failure mid-conversation the next call still starts a fresh run.
        await #expect(throws: WorkflowError.self) { try await agent.run("fail") }
        let again = try await agent.run("rollback")
        #expect(again.count == 1)
    }
}
