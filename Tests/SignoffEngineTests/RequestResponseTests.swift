import Foundation
import SignoffEngine
import SignoffExamples
import Testing

struct RequestResponseTests {
    // 1
    @Test func approvalGateApprovesAndRejects() async throws {
        let wf = try SeedExamples.approvalWorkflow()
        let paused = try await wf.run("Sensitive operation XYZ")
        #expect(paused.status == .waitingForInput)
        let request = try #require(paused.pendingRequests.first)
        #expect(request.id == "approve")
        #expect(try request.data(as: String.self) == "Approve processing of: Sensitive operation XYZ?")

        let approved = try await wf.resume(from: paused.checkpoint, responses: ["approve": true])
        #expect(approved.status == .idle)
        #expect(approved.outputs(as: String.self) == ["Approved: Approve processing of: Sensitive operation XYZ?"])

        let rejected = try await wf.resume(from: paused.checkpoint, responses: ["approve": false])
        #expect(rejected.status == .idle)
        #expect(rejected.outputs(as: String.self) == ["Processing rejected by user."])
    }

    // 2
    @Test func twoRequestsWithDifferentResponseTypesAreAnsweredTogether() async throws {
        let wf = try twoQuestionsWorkflow()
        let paused = try await wf.run("boxes")
        #expect(paused.pendingRequests.map(\.id) == ["count", "ship"])
        #expect(paused.pendingRequests.map(\.responseTypeName) == ["Int", "Bool"])
        // One typed, one as JSON bytes (as a host holding database bytes would send it).
        let done = try await wf.resume(from: paused.checkpoint,
                                       responses: ["count": .value(3), "ship": .json(Data("true".utf8))])
        #expect(done.status == .idle)
        #expect(done.outputs(as: String.self) == ["How many boxes? 3", "Ship boxes? true"])
        #expect(done.pendingRequests.isEmpty)
    }

    // 3
    @Test func partialAnswerLeavesTheOtherRequestPending() async throws {
        let wf = try twoQuestionsWorkflow()
        let paused = try await wf.run("boxes")
        let partial = try await wf.resume(from: paused.checkpoint, responses: ["count": 7])
        #expect(partial.status == .waitingForInput)
        #expect(partial.pendingRequests.map(\.id) == ["ship"])
        #expect(partial.outputs(as: String.self) == ["How many boxes? 7"])
        let rest = try await wf.resume(from: partial.checkpoint, responses: ["ship": false])
        #expect(rest.status == .idle)
        #expect(rest.outputs(as: String.self) == ["Ship boxes? false"])
    }

    // 4
    @Test func badResponsesAreErrorsThatChangeNothing() async throws {
        let wf = try twoQuestionsWorkflow()
        let paused = try await wf.run("boxes")
        let cp = paused.checkpoint

        await #expect { try await wf.resume(from: cp, responses: ["count": .value(1), "nope": .value(2)]) } throws: {
            ($0 as? WorkflowError)?.code == .unknownRequest && "\($0)".contains("nope")
        }
        await #expect { try await wf.resume(from: cp, responses: ["count": .value("three")]) } throws: {
            ($0 as? WorkflowError)?.code == .wrongResponseType
        }
        await #expect { try await wf.resume(from: cp, responses: ["count": .json(Data("\"three\"".utf8))]) } throws: {
            ($0 as? WorkflowError)?.code == .wrongResponseType
        }
        let once = try await wf.resume(from: cp, responses: ["count": 3])
        await #expect { try await wf.resume(from: once.checkpoint, responses: ["count": .value(4)]) } throws: {
            ($0 as? WorkflowError)?.code == .alreadyAnswered
        }
        // Nothing changed: the original checkpoint still takes both answers.
        #expect(cp.pendingRequests.map(\.id) == ["count", "ship"])
        let all = try await wf.resume(from: cp, responses: ["count": .value(1), "ship": .value(true)])
        #expect(all.outputs(as: String.self) == ["How many boxes? 1", "Ship boxes? true"])
        #expect(once.checkpoint.pendingRequests.map(\.id) == ["ship"])
    }

    // 5
    @Test func statusTimelineOfAPausingRunIsRunningThenWaitingForInput() async throws {
        let wf = try SeedExamples.approvalWorkflow()
        let events = try await collect(wf.runStreaming("deploy"))
        #expect(statuses(events) == [.running, .waitingForInput])
        #expect(events.map(label) == [
            "started", "status:running", "superstep:1", "invoked:approval_gate", "done:approval_gate",
            "request:approve", "completed:1", "status:waitingForInput",
        ])
    }

    @Test func requestWithoutAResponseHandlerFailsAtTheCall() async throws {
        let probe = Probe<WorkflowError.Code>()
        let wf = try WorkflowBuilder(name: "no-handler").addExecutor(FunctionExecutor(id: "asker") { h in
            h.on(String.self) { _, ctx in
                do { try ctx.requestInfo("question", responseType: String.self) } catch let e as WorkflowError {
                    probe.append(e.code)
                }
            }
        }).setStart("asker").build()
        let result = try await wf.run("x")
        #expect(probe.all == [.noResponseHandler])
        #expect(result.status == .idle)
        #expect(result.pendingRequests.isEmpty)
    }

    @Test func duplicateRequestIDIsAnErrorAtTheCall() async throws {
        let probe = Probe<WorkflowError.Code>()
        let wf = try WorkflowBuilder(name: "dup").addExecutor(FunctionExecutor(id: "asker") { h in
            h.on(String.self) { _, ctx in
                try ctx.requestInfo("q1", responseType: String.self, requestID: "same")
                do { try ctx.requestInfo("q2", responseType: String.self, requestID: "same") } catch let e as WorkflowError {
                    probe.append(e.code)
                }
            }
            h.onResponse(to: String.self, String.self) { _, _, _ in }
        }).setStart("asker").build()
        let result = try await wf.run("x")
        #expect(probe.all == [.duplicateRequestID])
        #expect(result.pendingRequests.count == 1)
        #expect(try result.pendingRequests[0].data(as: String.self) == "q1")
    }

    @Test func cancelledRequestGoesToTheCancelHandlerOrFailsTheRun() async throws {
        func make(withHandler: Bool) throws -> Workflow {
            try WorkflowBuilder(name: "cancel").addExecutor(FunctionExecutor(id: "asker") { h in
                h.on(String.self) { _, ctx in try ctx.requestInfo("q", responseType: String.self, requestID: "r1", deadline: Date(timeIntervalSince1970: 10)) }
                h.onResponse(to: String.self, String.self) { _, _, _ in }
                if withHandler {
                    h.onRequestCancelled(String.self) { q, id, ctx in try ctx.yieldOutput("cancelled \(id): \(q)") }
                }
                h.yields(String.self)
            }).setStart("asker").build()
        }
        let told = try make(withHandler: true)
        let paused = try await told.run("x")
        #expect(paused.pendingRequests.first?.deadline == Date(timeIntervalSince1970: 10))
        let r1 = try await told.resume(from: paused.checkpoint, cancelling: ["r1"])
        #expect(r1.status == .idle)
        #expect(r1.outputs(as: String.self) == ["cancelled r1: q"])

        let strict = try make(withHandler: false)
        let r2 = try await strict.resume(from: try await strict.run("x").checkpoint, cancelling: ["r1"])
        #expect(r2.status == .failed)
        #expect(r2.error?.code == .requestCancelled)
    }
}
