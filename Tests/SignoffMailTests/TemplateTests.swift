import Foundation
import SignoffTestSupport
import Testing
@testable import SignoffMail

struct TemplateTests {
    static let templatesDirectory = TestEnvironment.repositoryRoot + "/templates"

    @Test func embeddedTemplatesEqualTheFilesInTemplatesFolder() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.templatesDirectory)
            .filter { $0.hasSuffix(".mustache") }.sorted()
        #expect(names == BuiltinTemplates.files.keys.sorted(), "run scripts/embed-templates")
        for name in names {
            let file = try String(contentsOfFile: Self.templatesDirectory + "/" + name, encoding: .utf8)
            #expect(BuiltinTemplates.files[name] == file, "\(name) differs from its embedded copy: run scripts/embed-templates")
        }
    }

    @Test func everyKindHasSubjectTextAndHTMLAndTheBuiltinsValidate() {
        for kind in MailTemplateKind.allCases {
            for part in MailTemplates.Part.allCases {
                #expect(BuiltinTemplates.files["\(kind.fileStem).\(part.rawValue).mustache"] != nil)
            }
        }
        #expect(MailTemplates.builtin.validate() == [])
        #expect(MailTemplates.validate(directory: Self.templatesDirectory) == [])
    }

    @Test func jobInputCannotInjectMarkupIntoHTMLButTextStaysLiteral() throws {
        let context = OutboundFixtures.context(
            title: "Ship <script>alert(1)</script> & \"quote\"",
            body: "<img src=x onerror=alert(2)> Q&A",
            fields: [.init(name: "<b>name</b>", value: "a'b")])
        var withLink = context
        withLink.links = [.init(label: "click", url: "javascript:alert(3)")]
        let mail = try MailTemplates.builtin.render(.request, context: withLink)
        #expect(!mail.html.contains("<script>"))
        #expect(!mail.html.contains("<img"))
        #expect(!mail.html.contains("<b>name"))
        #expect(!mail.html.contains("javascript:"))
        #expect(mail.html.contains("Ship &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quote&quot;"))
        #expect(mail.text.contains("Ship <script>alert(1)</script> & \"quote\""))
        #expect(mail.text.contains("<img src=x onerror=alert(2)> Q&A"))
        #expect(mail.subject == "Approval needed: Ship <script>alert(1)</script> & \"quote\"")
    }

    @Test func typedRequestsShowTheValueGrammarWithChoices() throws {
        let mail = try MailTemplates.builtin.render(.request, context: OutboundFixtures.context(
            title: "Pick a region", kind: .choice, choices: ["eu-west", "us-east"]))
        #expect(mail.subject == "Answer needed: Pick a region")
        #expect(mail.text.contains("VALUE: eu-west"))
        #expect(mail.text.contains("answer with one of: eu-west, us-east"))
        #expect(!mail.text.contains("APPROVE"))
    }

    @Test func directoryFileOverridesTheBuiltinOfTheSameName() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "Bitte entscheiden: {{request.title}}\n".write(toFile: dir + "/request.subject.mustache", atomically: true, encoding: .utf8)
        let templates = try MailTemplates(directory: dir)
        let mail = try templates.render(.request, context: OutboundFixtures.context())
        #expect(mail.subject == "Bitte entscheiden: Publish the weekly report?")
        #expect(mail.text.hasPrefix("Reply with one of these on the first line:"), "other parts stay built in")
        #expect(templates.validate() == [])
    }

    @Test func jobNamedTemplateIsUsedAndMissingPartsFallBack() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "{{marker}}\nLegal review for {{job.name}}: {{request.title}}\n{{#grammar}}{{command}}\n{{/grammar}}"
            .write(toFile: dir + "/review-request.txt.mustache", atomically: true, encoding: .utf8)
        let templates = try MailTemplates(directory: dir)
        let mail = try templates.render(.request, named: "review-request", context: OutboundFixtures.context())
        #expect(mail.text == "-- reply above this line --\nLegal review for weekly-report: Publish the weekly report?\nAPPROVE\nREJECT: reason\n")
        #expect(mail.subject == "Approval needed: Publish the weekly report?")
        #expect(templates.validate(names: ["review-request"]) == [])
        let missing = templates.validate(names: ["no-such-template"])
        #expect(missing.map(\.code) == [.notFound])
        #expect(missing.first?.message.contains("no-such-template.txt.mustache") == true)
        #expect(throws: MailTemplateError.self) {
            try templates.render(.request, named: "no-such-template", context: OutboundFixtures.context())
        }
    }

    @Test func unknownVariableIsReportedWithFileLineAndTheKnownNames() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "Hello\n{{request.titel}}\n{{#request.fields}}{{name}}={{value}} {{nmae}}{{/request.fields}}\n{{#grammar}}{{command}}{{/grammar}}{{job.name}}\n"
            .write(toFile: dir + "/request.txt.mustache", atomically: true, encoding: .utf8)
        let problems = MailTemplates.validate(directory: dir)
        #expect(problems.map(\.code) == [.unknownVariable, .unknownVariable])
        let first = try #require(problems.first)
        #expect(first.file == "request.txt.mustache")
        #expect(first.line == 2)
        #expect(first.message.contains(dir + "/request.txt.mustache:2"))
        #expect(first.message.contains("{{request.titel}}") && first.message.contains("request.title"))
        #expect(problems[1].message.contains("{{nmae}}") && problems[1].line == 3)
    }

    @Test func templateThatDoesNotParseIsAnErrorAtValidateAndAtLoad() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "{{#request.hasFields}}\nno end\n".write(toFile: dir + "/reminder.html.mustache", atomically: true, encoding: .utf8)
        let problems = MailTemplates.validate(directory: dir)
        #expect(problems.map(\.code) == [.parse])
        #expect(problems.first?.message.contains("reminder.html.mustache") == true)
        #expect(throws: MailTemplateError.self) { try MailTemplates(directory: dir) }
    }

    @Test func unescapedTagsAndPartialsAreRefused() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "<p>{{{request.body}}}</p><p>{{&request.title}}</p>".write(toFile: dir + "/request.html.mustache", atomically: true, encoding: .utf8)
        try "{{> footer}}\n{{{request.body}}}\n".write(toFile: dir + "/request.txt.mustache", atomically: true, encoding: .utf8)
        let problems = MailTemplates.validate(directory: dir)
        #expect(problems.map(\.code).sorted(by: { $0.rawValue < $1.rawValue }) == [.unescapedHTML, .unescapedHTML, .unsupportedTag])
    }

    @Test func textTemplateStartingWithASectionHasNoLeadingBlankLine() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "{{#deadline}}\nBy {{deadline.iso}} & <soon>\n{{/deadline}}\n{{marker}}\n"
            .write(toFile: dir + "/reminder.txt.mustache", atomically: true, encoding: .utf8)
        let mail = try MailTemplates(directory: dir).render(.reminder, context: OutboundFixtures.context())
        #expect(mail.text == "By 2026-11-24T06:00:00Z & <soon>\n-- reply above this line --\n")
    }

    @Test func parseErrorInATextTemplateNamesTheRightLine() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "one\ntwo\n{{#request.body}}\nthree {{/request.title}}\n".write(toFile: dir + "/request.txt.mustache", atomically: true, encoding: .utf8)
        let problem = try #require(MailTemplates.validate(directory: dir).first)
        #expect(problem.code == .parse)
        #expect(problem.line == 4, "the unmatched close is on line 4, got \(problem.line ?? -1)")
    }

    @Test func missingDirectoryIsReported() {
        let problems = MailTemplates.validate(directory: "/nonexistent/signoff-templates")
        #expect(problems.map(\.code) == [.directoryUnreadable])
    }

    // MARK: - The compiled renderer against swift-mustache

    /// Contexts that take every section of the built-in templates both ways: each response kind,
    /// optional parts present and absent, markup and non-ASCII in job input.
    static func variedContexts() -> [MailTemplateContext] {
        var out: [MailTemplateContext] = []
        let kinds: [MailResponseKind] = [.approval, .number, .choice, .date, .text]
        for (i, kind) in kinds.enumerated() {
            var c = OutboundFixtures.context(
                title: i % 2 == 0 ? "Ship <b>it</b> & \"go\" 'now'" : "Zürich · 東京 report",
                body: i == 1 ? nil : "Line one\n  indented <two>\n\nthree & four",
                kind: kind, choices: kind == .choice ? ["red", "green & <blue>"] : [],
                fields: i == 2 ? [] : [.init(name: "a<b", value: "multi\nline 'v'"), .init(name: "week", value: "47")])
            c.request.reasonRequired = i % 2 == 0
            if i == 3 { c.deadline = nil; c.links = []; c.job.description = nil; c.reviewer.displayName = nil }
            if i == 4 { c.links.append(.init(label: "bad", url: "javascript:alert(1)")) }
            c.decision = i == 2 ? nil : .init(outcome: i == 0 ? "approve" : "vote: reject", value: i == 1 ? "42" : nil,
                                             reason: i == 3 ? nil : "Because <x> & y", by: i == 4 ? nil : "a@example.org",
                                             at: i == 0 ? nil : Date(timeIntervalSince1970: 1_795_000_000))
            c.clarificationProblem = i == 1 ? nil : "VALUE must be a number <1..10> & more"
            c.failure = i == 2 ? nil : .init(recipient: "x@example.org", kind: "request", error: "550 <no> & such")
            c.reminderNumber = i == 3 ? nil : i + 1
            c.run.owner = i == 4 ? nil : "owner@example.org"
            out.append(c)
        }
        return out
    }

    @Test(arguments: MailTemplateKind.allCases)
    func compiledBuiltinTemplatesRenderExactlyAsSwiftMustache(kind: MailTemplateKind) throws {
        for part in MailTemplates.Part.allCases {
            #expect(MailTemplates.builtin.template(kind: kind, named: nil, part: part).compiled != nil,
                    "built-in \(kind.fileStem).\(part.rawValue) is not compiled; it would render slowly")
        }
        for (i, context) in Self.variedContexts().enumerated() {
            let fast = try MailTemplates.builtin.render(kind, named: nil, context: context, tag: "ab12", compiled: true)
            let reference = try MailTemplates.builtin.render(kind, named: nil, context: context, tag: "ab12", compiled: false)
            #expect(fast == reference, "context \(i)")
        }
    }

    @Test func overrideTemplatesWithStandaloneTagsCommentsAndStackLookupsRenderAsSwiftMustache() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        let text = """
            {{! a standalone comment }}
              {{#request.fields}}
              - {{name}} = {{value}} (job {{job.name}}, {{.name}}/{{.job}})
              {{/request.fields}}
            {{^request.hasChoices}}no choices{{/request.hasChoices}} {{#request.choices}}[{{.}}]{{/request.choices}}
            {{request.isApproval}} {{request.choices}} {{missing.name}}{{request.title.nothing}}
            {{#decision}}{{outcome}} by {{by}}{{#reason}}: {{.}}{{/reason}}{{/decision}}
            {{#reviewer}}{{name}} <{{address}}> in {{#job}}{{name}}{{/job}}{{/reviewer}}
              {{{request.title}}} {{&request.body}}   {{! inline comment }} end
            {{#links}}{{label}}={{url}}{{/links}}{{^links}}no links{{/links}}

            """
        let html = """
            <p>{{request.title}}</p>{{#request.body}}<pre>{{.}}</pre>{{/request.body}}
            {{#grammar}}
              <code>{{command}}</code> {{meaning}}
            {{/grammar}}
            {{% CONTENT_TYPE: TEXT}}
            raw after pragma: {{request.title}}

            """
        try text.write(toFile: dir + "/confirmation.txt.mustache", atomically: true, encoding: .utf8)
        try html.write(toFile: dir + "/confirmation.html.mustache", atomically: true, encoding: .utf8)
        try "  {{#decision}} Re: {{outcome}}\t{{/decision}}  {{request.title}}  ".write(
            toFile: dir + "/confirmation.subject.mustache", atomically: true, encoding: .utf8)
        let templates = try MailTemplates(directory: dir)
        for part in MailTemplates.Part.allCases {
            #expect(templates.template(kind: .confirmation, named: nil, part: part).compiled != nil)
        }
        for (i, context) in Self.variedContexts().enumerated() {
            let fast = try templates.render(.confirmation, named: nil, context: context, tag: "", compiled: true)
            let reference = try templates.render(.confirmation, named: nil, context: context, tag: "", compiled: false)
            #expect(fast == reference, "context \(i)")
        }
        let mail = try templates.render(.confirmation, context: Self.variedContexts()[0])
        #expect(mail.html.contains("<p>Ship &lt;b&gt;it&lt;/b&gt; &amp; &quot;go&quot; &#39;now&#39;</p>"))
        #expect(mail.html.contains("raw after pragma: Ship <b>it</b>"), "the TEXT pragma turns escaping off below it")
        #expect(mail.text.contains("- a<b = multi\nline 'v' (job weekly-report, a<b/)"))
    }

    @Test func templateUsingATransformIsRenderedBySwiftMustache() throws {
        let dir = try TestEnvironment.temporaryDirectory("tpl")
        try "{{uppercased(job.name)}} {{#request.fields}}{{#first()}}first {{/first()}}{{name}} {{/request.fields}}\n"
            .write(toFile: dir + "/request.txt.mustache", atomically: true, encoding: .utf8)
        let templates = try MailTemplates(directory: dir)
        #expect(templates.template(kind: .request, named: nil, part: .txt).compiled == nil)
        #expect(templates.template(kind: .request, named: nil, part: .html).compiled != nil)
        let mail = try templates.render(.request, context: OutboundFixtures.context(
            fields: [.init(name: "week", value: "47"), .init(name: "owner", value: "Eda")]))
        #expect(mail.text == "WEEKLY-REPORT first week owner \n")
    }
}
