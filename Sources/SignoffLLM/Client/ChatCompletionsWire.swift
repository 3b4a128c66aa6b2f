import Foundation
import SignoffEngine

/// A function the model may call, offered in the request's `tools` list.
public struct ChatToolDefinition: Sendable, Hashable, Codable {
    public var name: String
    public var description: String?
    /// The JSON schema of the arguments object.
    public var parameters: JSONValue

    public init(name: String, description: String? = nil,
                parameters: JSONValue = .object(["type": .string("object"), "properties": .object([:])])) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// The chat-completions JSON shapes (OpenAI's, which Azure, Ollama, vLLM, llama.cpp and LM Studio share).
enum ChatCompletionsWire {
    struct Request: Encodable {
        var model: String?
        var messages: [Message]
        var temperature: Double?
        var maxTokens: Int?
        var tools: [Tool]?
        var stream: Bool?
        var streamOptions: StreamOptions?

        enum CodingKeys: String, CodingKey {
            case model, messages, temperature, tools, stream
            case maxTokens = "max_tokens"
            case streamOptions = "stream_options"
        }
    }

    struct StreamOptions: Encodable {
        var includeUsage: Bool
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    /// One `data:` event of a streamed completion.
    struct StreamChunk: Decodable {
        var model: String?
        var choices: [StreamChoice]?
        var usage: Usage?
    }

    struct StreamChoice: Decodable {
        var delta: Delta?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case delta
            case finishReason = "finish_reason"
        }
    }

    struct Delta: Decodable {
        var content: String?
        var toolCalls: [DeltaToolCall]?
        enum CodingKeys: String, CodingKey {
            case content
            case toolCalls = "tool_calls"
        }
    }

    struct DeltaToolCall: Decodable {
        var index: Int?
        var id: String?
        var function: DeltaFunction?
    }

    struct DeltaFunction: Decodable {
        var name: String?
        var arguments: String?
    }

    struct Message: Codable, Equatable {
        var role: String
        var content: String?
        var name: String?
        var toolCalls: [ToolCall]?
        var toolCallID: String?

        enum CodingKeys: String, CodingKey {
            case role, content, name
            case toolCalls = "tool_calls"
            case toolCallID = "tool_call_id"
        }

        init(role: String, content: String?, name: String? = nil, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
            self.role = role
            self.content = content
            self.name = name
            self.toolCalls = toolCalls
            self.toolCallID = toolCallID
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            role = try c.decodeIfPresent(String.self, forKey: .role) ?? "assistant"
            // Some servers send content as a list of parts: [{"type":"text","text":"…"}].
            if let s = try? c.decodeIfPresent(String.self, forKey: .content) {
                content = s
            } else if let parts = try? c.decodeIfPresent([Part].self, forKey: .content) {
                content = parts.compactMap(\.text).joined()
            } else {
                content = nil
            }
            name = try? c.decodeIfPresent(String.self, forKey: .name)
            toolCalls = try c.decodeIfPresent([ToolCall].self, forKey: .toolCalls)
            toolCallID = try? c.decodeIfPresent(String.self, forKey: .toolCallID)
        }
    }

    struct Part: Codable, Equatable {
        var type: String?
        var text: String?
    }

    struct ToolCall: Codable, Equatable {
        var id: String
        var type: String
        var function: FunctionCall

        init(id: String, type: String = "function", function: FunctionCall) {
            self.id = id
            self.type = type
            self.function = function
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? "function"
            function = try c.decode(FunctionCall.self, forKey: .function)
        }

        enum CodingKeys: String, CodingKey { case id, type, function }
    }

    struct FunctionCall: Codable, Equatable {
        var name: String
        var arguments: String

        init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            // OpenAI sends arguments as JSON text; Ollama's native shape sends an object.
            if let s = try? c.decode(String.self, forKey: .arguments) {
                arguments = s
            } else if let v = try? c.decode(JSONValue.self, forKey: .arguments) {
                let data = (try? JSONEncoder.sorted.encode(v)) ?? Data("{}".utf8)
                arguments = String(decoding: data, as: UTF8.self)
            } else {
                arguments = "{}"
            }
        }

        enum CodingKeys: String, CodingKey { case name, arguments }
    }

    struct Tool: Encodable {
        var type = "function"
        var function: Function

        struct Function: Encodable {
            var name: String
            var description: String?
            var parameters: JSONValue
        }
    }

    struct Response: Decodable {
        var model: String?
        var choices: [Choice]
        var usage: Usage?
    }

    struct Choice: Decodable {
        var message: Message?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case message
            case finishReason = "finish_reason"
        }
    }

    struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }

    /// `{"error": {"message", "type", "code"}}`, `{"error": "text"}` or `{"message": "text"}`.
    struct ErrorEnvelope: Decodable {
        var message: String?
        var type: String?
        var code: String?

        enum Outer: String, CodingKey { case error, message }
        enum Inner: String, CodingKey { case message, type, code }

        init(from decoder: any Decoder) throws {
            let outer = try decoder.container(keyedBy: Outer.self)
            if let inner = try? outer.nestedContainer(keyedBy: Inner.self, forKey: .error) {
                message = try? inner.decodeIfPresent(String.self, forKey: .message)
                type = try? inner.decodeIfPresent(String.self, forKey: .type)
                if let s = try? inner.decodeIfPresent(String.self, forKey: .code) {
                    code = s
                } else if let n = try? inner.decodeIfPresent(Int.self, forKey: .code) {
                    code = String(n)
                }
            } else if let s = try? outer.decodeIfPresent(String.self, forKey: .error) {
                message = s
            } else {
                message = try? outer.decodeIfPresent(String.self, forKey: .message)
            }
        }
    }

    // MARK: - Mapping

    /// Names OpenAI accepts in `name`; others are left out rather than rejected by the server.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
        }
    }

    /// Engine messages → wire messages. Function results become `role: tool` messages (one per
    /// result, in order); function calls become the assistant's `tool_calls`.
    static func messages(_ messages: [ChatMessage]) -> [Message] {
        var out: [Message] = []
        for message in messages {
            var texts: [String] = []
            var calls: [ToolCall] = []
            var results: [Message] = []
            for content in message.contents {
                switch content {
                case .text(let t):
                    texts.append(t)
                case .functionCall(let id, let name, let arguments):
                    calls.append(ToolCall(id: id, function: FunctionCall(name: name, arguments: arguments)))
                case .functionResult(let id, let result):
                    results.append(Message(role: "tool", content: result, toolCallID: id))
                }
            }
            let name = message.authorName.flatMap { isValidName($0) ? $0 : nil }
            let text = texts.joined(separator: "\n")
            if message.role == .tool && calls.isEmpty && !results.isEmpty && texts.isEmpty {
                out.append(contentsOf: results)
                continue
            }
            if !texts.isEmpty || !calls.isEmpty || results.isEmpty {
                out.append(Message(role: message.role.rawValue,
                                   content: calls.isEmpty || !text.isEmpty ? text : nil,
                                   name: name,
                                   toolCalls: calls.isEmpty ? nil : calls))
            }
            out.append(contentsOf: results)
        }
        return out
    }

    /// The first choice → one assistant ChatMessage (text, then function calls).
    static func chatResponse(_ response: Response) -> ChatResponse? {
        guard let message = response.choices.first?.message else { return nil }
        var contents: [ChatContent] = []
        if let text = message.content, !text.isEmpty || (message.toolCalls ?? []).isEmpty {
            contents.append(.text(text))
        }
        for call in message.toolCalls ?? [] {
            contents.append(.functionCall(callID: call.id, name: call.function.name, arguments: call.function.arguments))
        }
        if contents.isEmpty { contents.append(.text("")) }
        let usage = response.usage.map { ChatUsage(promptTokens: $0.promptTokens ?? 0, completionTokens: $0.completionTokens ?? 0) }
        return ChatResponse(messages: [ChatMessage(role: .assistant, contents: contents)], usage: usage, model: response.model)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
