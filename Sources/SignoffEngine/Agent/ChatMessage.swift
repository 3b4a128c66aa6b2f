import Foundation

/// Who wrote a chat message.
public enum ChatRole: String, Codable, Sendable, Hashable {
    case system, user, assistant, tool
}

/// One piece of a chat message: text, a function call the model asks for, or the result of one.
public enum ChatContent: Codable, Sendable, Hashable {
    case text(String)
    /// A call the assistant asks the caller to make. `arguments` is a JSON object, encoded as text.
    case functionCall(callID: String, name: String, arguments: String)
    /// The answer to a function call, matched by `callID`. `result` is JSON or plain text.
    case functionResult(callID: String, result: String)
}

/// A chat message: a role and its contents.
public struct ChatMessage: Codable, Sendable, Hashable {
    public var role: ChatRole
    public var contents: [ChatContent]
    /// The display name of the author, when the protocol carries one.
    public var authorName: String?

    public init(role: ChatRole, contents: [ChatContent], authorName: String? = nil) {
        self.role = role
        self.contents = contents
        self.authorName = authorName
    }

    public init(role: ChatRole, text: String, authorName: String? = nil) {
        self.init(role: role, contents: [.text(text)], authorName: authorName)
    }

    /// The text contents joined by newlines.
    public var text: String {
        contents.compactMap { if case .text(let t) = $0 { t } else { nil } }.joined(separator: "\n")
    }
}

/// Options for one chat completion.
public struct ChatOptions: Codable, Sendable, Hashable {
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?

    public init(model: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) {
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
    }
}

/// Token counts a provider reports for one completion.
public struct ChatUsage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

/// The answer to one chat completion.
public struct ChatResponse: Codable, Sendable, Hashable {
    public var messages: [ChatMessage]
    public var usage: ChatUsage?
    public var model: String?

    public init(messages: [ChatMessage], usage: ChatUsage? = nil, model: String? = nil) {
        self.messages = messages
        self.usage = usage
        self.model = model
    }

    /// The text of all messages joined by newlines.
    public var text: String { messages.map(\.text).joined(separator: "\n") }
}

/// Anything that completes a chat: a real LLM client, or a scripted one in tests.
public protocol ChatClient: Sendable {
    func complete(_ messages: [ChatMessage], options: ChatOptions) async throws -> ChatResponse
}
