import Foundation

/// The `llm:` block of signoff.yaml: which provider to call and how.
///
/// ```yaml
/// llm:
///   provider: openai              # openai (also Ollama, vLLM, llama.cpp, LM Studio) | azure
///   base_url: http://127.0.0.1:11434/v1
///   model: llama3.1
///   api_key_file: /etc/signoff/openai.key   # or api_key_env: MY_KEY_VAR (never the key itself in git)
///   timeout: 120                  # seconds for the whole request
///   connect_timeout: 10           # seconds to establish the connection
///   max_retries: 3                # retries after 429 / 5xx / connection failures
///   azure:
///     endpoint: https://myres.openai.azure.com
///     deployment: gpt-4o
///     api_version: 2024-10-21
///     api_key_file: /etc/signoff/azure.key    # sent as `api-key`
///     token_file: /run/signoff/aad-token      # or token_env: AZURE_OPENAI_AD_TOKEN; sent as Bearer
/// ```
///
/// Environment overrides: see ``applyingEnvironment(_:)``. Credentials are resolved at client
/// construction by ``resolveCredential(environment:)``; the key is never stored in this value
/// unless `api_key` was written inline, and it is never printed (see ``description``).
public struct LLMConfiguration: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Which wire protocol to speak.
    public enum Provider: String, Codable, Sendable, Hashable {
        /// OpenAI chat-completions at `base_url + /chat/completions`.
        case openai
        /// Azure OpenAI at `endpoint/openai/deployments/{deployment}/chat/completions?api-version=…`.
        case azure
    }

    /// The `azure:` sub-block.
    public struct Azure: Codable, Sendable, Hashable {
        /// e.g. `https://myresource.openai.azure.com`
        public var endpoint: String?
        /// The deployment name (Azure's stand-in for the model).
        public var deployment: String?
        /// The `api-version` query parameter.
        public var apiVersion: String?
        /// A file holding the key sent as the `api-key` header.
        public var apiKeyFile: String?
        /// The environment variable holding the `api-key` (default `AZURE_OPENAI_API_KEY`).
        public var apiKeyEnv: String?
        /// A file holding a Microsoft Entra bearer token (e.g. written by
        /// `az account get-access-token --resource https://cognitiveservices.azure.com`).
        public var tokenFile: String?
        /// The environment variable holding such a bearer token.
        public var tokenEnv: String?

        public init(endpoint: String? = nil, deployment: String? = nil, apiVersion: String? = nil,
                    apiKeyFile: String? = nil, apiKeyEnv: String? = nil,
                    tokenFile: String? = nil, tokenEnv: String? = nil) {
            self.endpoint = endpoint
            self.deployment = deployment
            self.apiVersion = apiVersion
            self.apiKeyFile = apiKeyFile
            self.apiKeyEnv = apiKeyEnv
            self.tokenFile = tokenFile
            self.tokenEnv = tokenEnv
        }

        enum CodingKeys: String, CodingKey {
            case endpoint, deployment
            case apiVersion = "api_version"
            case apiKeyFile = "api_key_file"
            case apiKeyEnv = "api_key_env"
            case tokenFile = "token_file"
            case tokenEnv = "token_env"
        }
    }

    public var provider: Provider
    /// OpenAI-compatible base URL, including `/v1` (default `https://api.openai.com/v1`).
    public var baseURL: String?
    /// The default model for steps that do not name one.
    public var model: String?
    /// An inline key. Prefer `api_key_file` or `api_key_env`: signoff.yaml is often in git.
    public var apiKey: String?
    /// A file whose content (trimmed) is the bearer key.
    public var apiKeyFile: String?
    /// The name of an environment variable holding the bearer key.
    public var apiKeyEnv: String?
    public var azure: Azure?
    /// Seconds for the whole request (default 120).
    public var timeout: Double?
    /// Seconds to establish the connection (default 10).
    public var connectTimeout: Double?
    /// Retries after 429, 5xx and connection failures (default 3).
    public var maxRetries: Int?
    /// Default temperature for steps that do not set one.
    public var temperature: Double?
    /// Default `max_tokens` for steps that do not set one.
    public var maxTokens: Int?

    public init(provider: Provider = .openai, baseURL: String? = nil, model: String? = nil,
                apiKey: String? = nil, apiKeyFile: String? = nil, apiKeyEnv: String? = nil,
                azure: Azure? = nil, timeout: Double? = nil, connectTimeout: Double? = nil,
                maxRetries: Int? = nil, temperature: Double? = nil, maxTokens: Int? = nil) {
        self.provider = provider
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.apiKeyFile = apiKeyFile
        self.apiKeyEnv = apiKeyEnv
        self.azure = azure
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxRetries = maxRetries
        self.temperature = temperature
        self.maxTokens = maxTokens
    }

    enum CodingKeys: String, CodingKey {
        case provider, model, azure, timeout, temperature
        case baseURL = "base_url"
        case apiKey = "api_key"
        case apiKeyFile = "api_key_file"
        case apiKeyEnv = "api_key_env"
        case connectTimeout = "connect_timeout"
        case maxRetries = "max_retries"
        case maxTokens = "max_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decodeIfPresent(Provider.self, forKey: .provider) ?? .openai
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
        apiKeyFile = try c.decodeIfPresent(String.self, forKey: .apiKeyFile)
        apiKeyEnv = try c.decodeIfPresent(String.self, forKey: .apiKeyEnv)
        azure = try c.decodeIfPresent(Azure.self, forKey: .azure)
        timeout = try c.decodeIfPresent(Double.self, forKey: .timeout)
        connectTimeout = try c.decodeIfPresent(Double.self, forKey: .connectTimeout)
        maxRetries = try c.decodeIfPresent(Int.self, forKey: .maxRetries)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
    }

    /// The default OpenAI base URL.
    public static let defaultBaseURL = "https://api.openai.com/v1"
    /// The Azure `api-version` used when none is configured.
    public static let defaultAzureAPIVersion = "2024-10-21"

    /// Seconds for the whole request.
    public var effectiveTimeout: Double { timeout ?? 120 }
    /// Seconds to connect.
    public var effectiveConnectTimeout: Double { connectTimeout ?? 10 }
    /// Retries after a transient failure.
    public var effectiveMaxRetries: Int { max(0, maxRetries ?? 3) }

    /// A copy with environment overrides applied. Variables (all optional):
    /// `SIGNOFF_LLM_PROVIDER`, `SIGNOFF_LLM_BASE_URL`, `SIGNOFF_LLM_MODEL`, `SIGNOFF_LLM_TIMEOUT`,
    /// `SIGNOFF_LLM_CONNECT_TIMEOUT`, `SIGNOFF_LLM_MAX_RETRIES`, `AZURE_OPENAI_ENDPOINT`,
    /// `AZURE_OPENAI_DEPLOYMENT`, `AZURE_OPENAI_API_VERSION`. Keys are not copied here; they are
    /// read from the environment by ``resolveCredential(environment:)``.
    public func applyingEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> LLMConfiguration {
        var c = self
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        func number(_ name: String) throws -> Double? {
            guard let v = value(name) else { return nil }
            guard let d = Double(v), d > 0 else {
                throw LLMError(code: .configuration, message: "\(name)=\(v) is not a positive number of seconds",
                               fix: "set \(name) to a number such as 30, or unset it")
            }
            return d
        }
        if let p = value("SIGNOFF_LLM_PROVIDER") {
            guard let provider = Provider(rawValue: p.lowercased()) else {
                throw LLMError(code: .configuration, message: "SIGNOFF_LLM_PROVIDER=\(p) is not a known provider",
                               fix: "use openai (also for Ollama, vLLM, llama.cpp, LM Studio) or azure")
            }
            c.provider = provider
        }
        if let v = value("SIGNOFF_LLM_BASE_URL") { c.baseURL = v }
        if let v = value("SIGNOFF_LLM_MODEL") { c.model = v }
        if let v = try number("SIGNOFF_LLM_TIMEOUT") { c.timeout = v }
        if let v = try number("SIGNOFF_LLM_CONNECT_TIMEOUT") { c.connectTimeout = v }
        if let v = value("SIGNOFF_LLM_MAX_RETRIES") {
            guard let n = Int(v), n >= 0 else {
                throw LLMError(code: .configuration, message: "SIGNOFF_LLM_MAX_RETRIES=\(v) is not a whole number",
                               fix: "set it to 0 or more, or unset it")
            }
            c.maxRetries = n
        }
        var azure = c.azure ?? Azure()
        var azureTouched = c.azure != nil
        if let v = value("AZURE_OPENAI_ENDPOINT") { azure.endpoint = v; azureTouched = true }
        if let v = value("AZURE_OPENAI_DEPLOYMENT") { azure.deployment = v; azureTouched = true }
        if let v = value("AZURE_OPENAI_API_VERSION") { azure.apiVersion = v; azureTouched = true }
        if azureTouched { c.azure = azure }
        return c
    }

    /// Finds the credential to send, in this order.
    ///
    /// OpenAI-compatible: `SIGNOFF_LLM_API_KEY`, then `api_key`, `api_key_file`, the variable named
    /// by `api_key_env`, then `OPENAI_API_KEY`; none at all is allowed (Ollama and most local
    /// servers need no key) and sends no `Authorization` header.
    ///
    /// Azure: `SIGNOFF_LLM_API_KEY`, `azure.api_key_file`, `azure.api_key_env` (or
    /// `AZURE_OPENAI_API_KEY`) as the `api-key` header; else `azure.token_file`, `azure.token_env`
    /// as a bearer token. Azure without any credential is a configuration error.
    public func resolveCredential(environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> LLMCredential {
        func envValue(_ name: String?) -> String? {
            guard let name, let v = env[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        func file(_ path: String?, setting: String) throws -> String? {
            guard let path, !path.isEmpty else { return nil }
            let expanded = (path as NSString).expandingTildeInPath
            guard let data = FileManager.default.contents(atPath: expanded) else {
                throw LLMError(code: .configuration, message: "\(setting) \(path) cannot be read",
                               fix: "create the file with the key as its only content and make it readable by the signoff user")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                throw LLMError(code: .configuration, message: "\(setting) \(path) is empty",
                               fix: "write the key into the file")
            }
            return text
        }
        switch provider {
        case .openai:
            if let k = envValue("SIGNOFF_LLM_API_KEY") { return .bearer(k, source: "SIGNOFF_LLM_API_KEY") }
            if let k = apiKey?.trimmingCharacters(in: .whitespacesAndNewlines), !k.isEmpty { return .bearer(k, source: "llm.api_key") }
            if let k = try file(apiKeyFile, setting: "llm.api_key_file") { return .bearer(k, source: "llm.api_key_file (\(apiKeyFile!))") }
            if let name = apiKeyEnv {
                guard let k = envValue(name) else {
                    throw LLMError(code: .configuration, message: "llm.api_key_env names \(name), which is not set",
                                   fix: "export \(name) in the worker's environment, or change llm.api_key_env")
                }
                return .bearer(k, source: "llm.api_key_env (\(name))")
            }
            if let k = envValue("OPENAI_API_KEY") { return .bearer(k, source: "OPENAI_API_KEY") }
            return .none
        case .azure:
            let az = azure ?? Azure()
            if let k = envValue("SIGNOFF_LLM_API_KEY") { return .apiKey(k, source: "SIGNOFF_LLM_API_KEY") }
            if let k = try file(az.apiKeyFile, setting: "llm.azure.api_key_file") { return .apiKey(k, source: "llm.azure.api_key_file (\(az.apiKeyFile!))") }
            let keyEnv = az.apiKeyEnv ?? "AZURE_OPENAI_API_KEY"
            if let k = envValue(keyEnv) { return .apiKey(k, source: keyEnv) }
            if let t = try file(az.tokenFile, setting: "llm.azure.token_file") { return .bearer(t, source: "llm.azure.token_file (\(az.tokenFile!))") }
            if let name = az.tokenEnv, let t = envValue(name) { return .bearer(t, source: "llm.azure.token_env (\(name))") }
            throw LLMError(code: .configuration, message: "Azure OpenAI needs a key or a token and none was found",
                           fix: "set llm.azure.api_key_file, AZURE_OPENAI_API_KEY or SIGNOFF_LLM_API_KEY, or llm.azure.token_file / token_env with a token from `az account get-access-token --resource https://cognitiveservices.azure.com`")
        }
    }

    /// The configuration with any inline key shown as `[redacted]`.
    public var description: String {
        var parts = ["provider=\(provider.rawValue)"]
        if let baseURL { parts.append("base_url=\(baseURL)") }
        if let model { parts.append("model=\(model)") }
        if apiKey != nil { parts.append("api_key=[redacted]") }
        if let apiKeyFile { parts.append("api_key_file=\(apiKeyFile)") }
        if let apiKeyEnv { parts.append("api_key_env=\(apiKeyEnv)") }
        if let azure {
            parts.append("azure.endpoint=\(azure.endpoint ?? "-") azure.deployment=\(azure.deployment ?? "-") azure.api_version=\(azure.apiVersion ?? Self.defaultAzureAPIVersion)")
        }
        parts.append("timeout=\(effectiveTimeout) connect_timeout=\(effectiveConnectTimeout) max_retries=\(effectiveMaxRetries)")
        return "LLMConfiguration(" + parts.joined(separator: " ") + ")"
    }
}

/// The credential the client sends. Its description never shows the secret.
public enum LLMCredential: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// No credential (local servers such as Ollama).
    case none
    /// `Authorization: Bearer …` (OpenAI keys; Azure Entra tokens). `source` names the setting it came from.
    case bearer(String, source: String)
    /// Azure's `api-key: …` header. `source` names the setting it came from.
    case apiKey(String, source: String)

    /// The setting the secret came from, for error messages ("check llm.api_key_file").
    public var source: String? {
        switch self {
        case .none: nil
        case .bearer(_, let s), .apiKey(_, let s): s
        }
    }

    var secret: String? {
        switch self {
        case .none: nil
        case .bearer(let k, _), .apiKey(let k, _): k
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .bearer(_, let s): "bearer([redacted] from \(s))"
        case .apiKey(_, let s): "api-key([redacted] from \(s))"
        }
    }

    public var debugDescription: String { description }
}
