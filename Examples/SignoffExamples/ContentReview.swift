import Foundation
import SignoffEngine

/// Structured request passed from Worker to Reviewer for evaluation.
public struct ReviewRequest: WorkflowPayload, Hashable {
    public static let typeName = "ReviewRequest"
    public var requestID: String
    public var userMessages: [ChatMessage]
    public var agentMessages: [ChatMessage]
    public init(requestID: String, userMessages: [ChatMessage], agentMessages: [ChatMessage]) {
        self.requestID = requestID
        self.userMessages = userMessages
        self.agentMessages = agentMessages
    }
}

/// Structured response from Reviewer back to Worker.
public struct ReviewResponse: WorkflowPayload, Hashable {
    public static let typeName = "ReviewResponse"
    public var requestID: String
    public var feedback: String
    public var approved: Bool
    public init(requestID: String, feedback: String, approved: Bool) {
        self.requestID = requestID
        self.feedback = feedback
        self.approved = approved
    }
}

/// A request message type for escalation to a human reviewer.
public struct HumanReviewRequest: WorkflowPayload, Hashable {
    public static let typeName = "HumanReviewRequest"
    public var agentRequest: ReviewRequest?
    public init(agentRequest: ReviewRequest? = nil) { self.agentRequest = agentRequest }
}

/// Executor that generates responses and incorporates feedback when necessary.
public actor Worker: StatefulExecutor {
    public nonisolated let id: String
    private let chatClient: any ChatClient
    private var pendingRequests: [String: Pending] = [:]

    /// A review in progress: the request and the conversation that produced it.
    public struct Pending: Codable, Sendable {
        public var request: ReviewRequest
        public var messages: [ChatMessage]
    }

    public init(id: String, chatClient: any ChatClient) {
        self.id = id
        self.chatClient = chatClient
    }

    public nonisolated func declare(_ h: inout ExecutorHandlers) {
        h.on([ChatMessage].self) { msgs, ctx in try await self.handleUserMessages(msgs, ctx) }
        h.on(ReviewResponse.self) { review, ctx in try await self.handleReviewResponse(review, ctx) }
        h.sends(ReviewRequest.self)
        h.yields(ChatMessage.self)
    }

    func handleUserMessages(_ userMessages: [ChatMessage], _ ctx: WorkflowContext) async throws {
        // Initialize chat with system prompt.
        var messages = [ChatMessage(role: .system, text: "You are a helpful assistant. Be concise.")]
        messages.append(contentsOf: userMessages)

        let response = try await chatClient.complete(messages, options: ChatOptions())

        // Add agent messages to context.
        messages.append(contentsOf: response.messages)

        // Create review request and send to Reviewer.
        let request = ReviewRequest(requestID: UUID().uuidString.lowercased(), userMessages: userMessages,
                                    agentMessages: response.messages)
        try ctx.send(request)

        // Track request for possible retry.
        pendingRequests[request.requestID] = Pending(request: request, messages: messages)
    }

    func handleReviewResponse(_ review: ReviewResponse, _ ctx: WorkflowContext) async throws {
        guard let pending = pendingRequests.removeValue(forKey: review.requestID) else {
            throw WorkflowError(.executorFailed, "Unknown request ID in review: \(review.requestID)")
        }
        var (request, messages) = (pending.request, pending.messages)

        if review.approved {
            // Emit approved result to external consumer.
            let contents = request.agentMessages.flatMap(\.contents)
            try ctx.yieldOutput(ChatMessage(role: .assistant, contents: contents))
            return
        }

        // Incorporate review feedback.
        messages.append(ChatMessage(role: .system, text: review.feedback))
        messages.append(ChatMessage(role: .system, text: "Please incorporate the feedback and regenerate the response."))
        messages.append(contentsOf: request.userMessages)

        // Retry with updated prompt.
        let response = try await chatClient.complete(messages, options: ChatOptions())
        messages.append(contentsOf: response.messages)

        // Send updated request for re-review.
        request = ReviewRequest(requestID: review.requestID, userMessages: request.userMessages,
                                agentMessages: response.messages)
        try ctx.send(request)

        // Track new request for further evaluation.
        pendingRequests[request.requestID] = Pending(request: request, messages: messages)
    }

    public func snapshot() -> [String: Pending] { pendingRequests }
    public func restore(_ snapshot: [String: Pending]) { pendingRequests = snapshot }
}

/// Executor that always escalates reviews to a human manager.
public struct ReviewerWithHumanInTheLoop: Executor {
    public let id: String
    private let workerID: String

    /// When we create an instance, the worker id is needed so we can send responses back to it.
    public init(workerID: String, reviewerID: String? = nil) {
        self.id = reviewerID ?? "\(workerID)-reviewer"
        self.workerID = workerID
    }

    public func declare(_ h: inout ExecutorHandlers) {
        // Handler 1: receives the review request and escalates it to a human.
        h.on(ReviewRequest.self) { request, ctx in
            try ctx.requestInfo(HumanReviewRequest(agentRequest: request), responseType: ReviewResponse.self)
        }
        // Handler 2: receives the human response and forwards it back to the Worker.
        h.onResponse(to: HumanReviewRequest.self, ReviewResponse.self) { [workerID] _, response, ctx in
            try ctx.send(response, to: workerID)
        }
        h.sends(ReviewResponse.self)
    }
}

extension SeedExamples {
    /// The worker/reviewer loop: input `[ChatMessage]`; outputs the approved assistant message.
    public static func contentReviewWorkflow(chatClient: any ChatClient) throws -> Workflow {
        try WorkflowBuilder(name: "content-review")
            .addExecutor { Worker(id: "sub-worker", chatClient: chatClient) }
            .addExecutor(ReviewerWithHumanInTheLoop(workerID: "sub-worker"))
            .addEdge("sub-worker", "sub-worker-reviewer")  // Worker sends requests to Reviewer
            .addEdge("sub-worker-reviewer", "sub-worker")  // Reviewer sends feedback to Worker
            .setStart("sub-worker")
            .build()
    }

    /// The worker/reviewer loop as an agent (`.as_agent()` in the seed).
    public static func contentReviewAgent(chatClient: any ChatClient) throws -> WorkflowAgent {
        WorkflowAgent(workflow: try contentReviewWorkflow(chatClient: chatClient))
    }
}
