import Foundation
import SignoffEngine
import Testing
@testable import SignoffRunner

/// A chat client that records what it is sent and answers from a script (no user runs this).
final class ScriptedChatClient: ChatClient, @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var replies: [String]
    private var recorded: [[ChatMessage]] = []
    var calls: [[ChatMessage]] { lock.withLock { recorded } }

    init(replies: [String]) { self.replies = replies }

    func complete(_ messages: [ChatMessage], options: ChatOptions) async throws -> ChatResponse {
        let text: String = lock.withLock {
            recorded.append(messages)
            return replies.isEmpty ? "(no more replies)" : replies.removeFirst()
        }
        return ChatResponse(messages: [ChatMessage(role: .assistant, text: text)],
                            usage: ChatUsage(promptTokens: 10, completionTokens: 5), model: options.model ?? "scripted")
    }
}

struct JobCompilerTests {
    static func state(_ job: JobDefinition, input: [String: JobValue] = [:]) -> FlowState {
        var values = job.input
        values.merge(input) { _, new in new }
        return FlowState(run: RunInfo(id: "r1", job: job.name, attempt: 1, requestedBy: "me@example.org", startedAt: Date()),
                         input: values)
    }

    @Test func llmDraftRejectedWithFeedbackIsRegeneratedWithIt() async throws {
        let job = try JobParser.parse(text: """
            name: content
            input: { topic: "cats" }
            steps:
              - id: draft
                llm: { system: "Write well.", prompt: "About {{input.topic}}", model: m1 }
              - id: review
                approval: { reviewers: [ed@example.org], show: "{{steps.draft.text}}", on_reject: draft, max_rounds: 3 }
              - id: done
                shell: ["echo", "{{steps.draft.text}}"]
            """, file: "/tmp/content.yaml")
        let client = ScriptedChatClient(replies: ["first draft", "second draft with more cats"])
        let workflow = try JobCompiler.compile(job, services: StepServices(chatClient: client))
        var result = try await workflow.run(Self.state(job))
        #expect(result.status == .waitingForInput)
        let first = try #require(result.pendingRequests.first)
        #expect(try first.data(as: HumanRequest.self).body == "first draft")

        result = try await workflow.resume(from: result.checkpoint, responses: [
            first.id: .json(HumanResponse.reject(reason: "more cats please", by: "ed@example.org", via: "test"))])
        #expect(result.status == .waitingForInput)
        let second = try #require(result.pendingRequests.first)
        #expect(try second.data(as: HumanRequest.self).body == "second draft with more cats")
        #expect(try second.data(as: HumanRequest.self).round == 2)
        let regenerate = try #require(client.calls.last)
        let texts = regenerate.map(\.text)
        #expect(texts.contains { $0.contains("more cats please") }, "the feedback reaches the model: \(texts)")
        #expect(texts.contains("first draft"), "the rejected draft is part of the conversation: \(texts)")

        result = try await workflow.resume(from: result.checkpoint, responses: [
            second.id: .json(HumanResponse.approve(by: "ed@example.org", via: "test"))])
        #expect(result.status == .idle)
        let final = FlowState.merge(result.outputs(as: FlowState.self))
        #expect(final.results["done"]?.stdout == "second draft with more cats\n")
        #expect(final.results["draft"]?.promptTokens == 10)
        #expect(final.feedback == nil)
    }

    @Test func maxRoundsEndsTheLoopAsRejected() async throws {
        let job = try JobParser.parse(text: """
            name: loop
            steps:
              - id: make
                shell: ["echo", "x"]
              - id: check
                approval: { reviewers: [ed@example.org], on_reject: make, max_rounds: 2 }
            """, file: "/tmp/loop.yaml")
        let workflow = try JobCompiler.compile(job, services: StepServices())
        var result = try await workflow.run(Self.state(job))
        for round in 1...2 {
            let request = try #require(result.pendingRequests.first, "round \(round)")
            result = try await workflow.resume(from: result.checkpoint, responses: [
                request.id: .json(HumanResponse.reject(reason: "no \(round)", by: "ed@example.org", via: "t"))])
        }
        #expect(result.status == .idle)
        let final = FlowState.merge(result.outputs(as: FlowState.self))
        #expect(final.rejectedBy == "check")
        #expect(final.results["check"]?.reason == "no 2")
    }

    @Test func askStepValueIsAvailableToLaterSteps() async throws {
        let job = try JobParser.parse(text: """
            name: sizes
            steps:
              - id: size
                ask: { reviewers: [ops@example.org], question: "Size?", type: choice, choices: [small, large] }
              - id: use
                shell: ["echo", "{{steps.size.value}} by {{steps.size.by}}"]
            """, file: "/tmp/sizes.yaml")
        let workflow = try JobCompiler.compile(job, services: StepServices())
        var result = try await workflow.run(Self.state(job))
        let request = try #require(result.pendingRequests.first)
        #expect(try request.data(as: HumanRequest.self).expectedResponse == .value(.choice(["small", "large"])))
        result = try await workflow.resume(from: result.checkpoint, responses: [
            request.id: .json(HumanResponse.value(.string("large"), by: "ops@example.org", via: "t"))])
        #expect(FlowState.merge(result.outputs(as: FlowState.self)).results["use"]?.stdout == "large by ops@example.org\n")
    }

    @Test func unregisteredExecutorIsNamedWithASuggestion() throws {
        var registry = ExecutorRegistry()
        registry.register("resize-images") { _ in .string("ok") }
        let job = try JobParser.parse(text: "name: t\nsteps:\n  - id: a\n    executor: resize-image\n", file: "/tmp/t.yaml")
        #expect {
            _ = try JobCompiler.compile(job, services: StepServices(registry: registry))
        } throws: { error in
            (error as? RunnerError)?.message.contains("did you mean `resize-images`?") == true
        }
    }

    @Test func registeredFunctionExecutorGetsRenderedArguments() async throws {
        var registry = ExecutorRegistry()
        registry.register("shout") { call in .string((call.arguments["text"]?.description ?? "").uppercased()) }
        let job = try JobParser.parse(text: """
            name: t
            input: { who: "world" }
            steps:
              - id: a
                executor: { name: shout, with: { text: "hello {{input.who}}" } }
            """, file: "/tmp/t.yaml")
        let workflow = try JobCompiler.compile(job, services: StepServices(registry: registry))
        let result = try await workflow.run(Self.state(job))
        #expect(FlowState.merge(result.outputs(as: FlowState.self)).results["a"]?.output == "HELLO WORLD")
    }

    @Test func registeredExecutorIsCancelledAtItsTimeout() async throws {
        var registry = ExecutorRegistry()
        registry.register("slow") { _ in
            try await Task.sleep(nanoseconds: 300_000_000_000)
            return .string("too late")
        }
        let job = try JobParser.parse(text: "name: t\nsteps:\n  - id: a\n    executor: slow\n    timeout: 200ms\n", file: "/tmp/t.yaml")
        let workflow = try JobCompiler.compile(job, services: StepServices(registry: registry))
        let started = Date()
        let result = try await workflow.run(Self.state(job))
        #expect(result.status == .failed)
        #expect(result.error?.message.contains("ran longer than its timeout of 200ms") == true, "\(String(describing: result.error))")
        // Far below the executor's 300 s: it was cancelled, not waited for (the bound is loose
        // because the whole suite shares two cores and their cooperative threads).
        #expect(Date().timeIntervalSince(started) < 120)
    }
}
