# md2man.awk — convert the small Markdown subset of docs/man/*.md to roff
# man(7). POSIX awk; no other tool needed at build time.
#
#   awk -v version=0.1.0 -v date=2026-11-24 -f md2man.awk ccbctl-probe.1.md > ccbctl-probe.1
#
# The subset:
#   # name(N) -- one-line description   first line: .TH and the NAME section
#   ## SECTION                            .SH SECTION (upper-cased)
#   blank line                            new paragraph
#   `term` ... (a line) then ": text"     definition list entry (.TP), the
#                                         ": " lines continue the description
#   - item                                bullet list
#   4-space indented lines                literal block (examples)
#   `code` / *arg* inline                 bold / italic
# Anything else is running text.

function esc(s) {
	gsub(/\\/, "\\e", s)
	gsub(/-/, "\\-", s)
	return s
}

# Inline markup after escaping: `x` bold, *x* italic.
function inline(s,    out, code) {
	s = esc(s)
	out = ""
	while (match(s, /`[^`]*`/)) {
		code = substr(s, RSTART + 1, RLENGTH - 2)
		gsub(/\*/, "\001", code) # no italics inside code
		out = out substr(s, 1, RSTART - 1) "\\fB" code "\\fR"
		s = substr(s, RSTART + RLENGTH)
	}
	s = out s
	out = ""
	while (match(s, /\*[^* ][^*]*\*/)) {
		out = out substr(s, 1, RSTART - 1) "\\fI" substr(s, RSTART + 1, RLENGTH - 2) "\\fR"
		s = substr(s, RSTART + RLENGTH)
	}
	s = out s
	gsub(/\001/, "*", s)
	return s
}

# A line of text must not start with a control character.
function text(s) {
	if (s ~ /^[.']/)
		s = "\\&" s
	print s
}

function end_literal() {
	if (in_lit) {
		print ".fi"
		print ".RE"
		in_lit = 0
	}
}

{ L[++n] = $0 }

END {
	# "# ccbctl-probe(1) -- description"
	line = L[1]
	sub(/^# */, "", line)
	name = line
	sub(/\(.*/, "", name)
	sect = line
	sub(/^[^(]*\(/, "", sect)
	sub(/\).*/, "", sect)
	desc = line
	sub(/^[^ ]* *-- */, "", desc)
	printf ".TH \"%s\" \"%s\" \"%s\" \"libccb %s\" \"libccb manual\"\n", esc(toupper(name)), sect, date, version
	print ".SH NAME"
	text(esc(name) " \\- " inline(desc))
	para = 0
	for (i = 2; i <= n; i++) {
		l = L[i]
		if (l ~ /^    /) {
			if (!in_lit) {
				print ".RS 4"
				print ".nf"
				in_lit = 1
			}
			text(esc(substr(l, 5)))
			continue
		}
		end_literal()
		if (l == "") {
			para = 1
		} else if (l ~ /^## /) {
			print ".SH " toupper(substr(l, 4))
			para = 0
		} else if (l ~ /^: /) {
			text(inline(substr(l, 3)))
		} else if (l ~ /^- /) {
			print ".IP \\(bu 2"
			text(inline(substr(l, 3)))
			para = 0
		} else if (i < n && L[i + 1] ~ /^: /) {
			print ".TP"
			text(inline(l))
			para = 0
		} else {
			if (para)
				print ".PP"
			para = 0
			text(inline(l))
		}
	}
	end_literal()
}
