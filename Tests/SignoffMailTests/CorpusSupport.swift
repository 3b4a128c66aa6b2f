import Foundation

/// Locates ../shared/corpora next to the package root (CI checks shared/ out beside the clone).
enum Corpus {
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
            url = url.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    }()

    static let root = packageRoot.appendingPathComponent("../shared/corpora").standardizedFileURL

    /// File names (relative to `root`) in `folder` with one of `extensions`, sorted.
    static func files(_ folder: String, extensions: Set<String>) -> [String] {
        let dir = root.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { extensions.contains(($0 as NSString).pathExtension) }.sorted().map { "\(folder)/\($0)" }
    }

    static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    static func text(_ relative: String) throws -> String {
        let b = try bytes(relative)
        return String(decoding: b, as: UTF8.self)
    }

    static let trimmerCases = files("discourse-email_reply_trimmer/emails", extensions: ["txt"]).map { ($0 as NSString).lastPathComponent }
    static let replyParserCases = files("github-email_reply_parser", extensions: ["txt"])
    static let talonMessages = files("mailgun-talon/standard_replies", extensions: ["eml"]) + files("mailgun-talon", extensions: ["eml"])
    static let talonHTML = files("mailgun-talon/html_replies", extensions: ["html"]) + files("mailgun-talon", extensions: ["html"])
}
