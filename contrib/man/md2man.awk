# md2man.awk: the man pages' one source (contrib/man/*.md) to roff, for the small Markdown
# subset those pages use, so no converter (pandoc) needs to be installed:
#   % NAME(SECTION) | TITLE          first line: the .TH header
#   # HEADING                        .SH
#   ## Heading                       .SS
#   **bold** `code` *italic*         \fB..\fR, \fB..\fR, \fI..\fR
#   TERM line, then ": text" lines   a tagged paragraph (.TP), e.g. an option
#   - item                           a bulleted list item
#   ``` ... ```                      a literal block (no filling)
#   empty line                       a new paragraph
# Usage: awk -v version=0.1.0 -f md2man.awk page.md > page.N
function inline(s) {
  gsub(/\\/, "\\e", s)
  while (match(s, /\*\*[^*]+\*\*/)) s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 2, RLENGTH - 4) "\\fR" substr(s, RSTART + RLENGTH)
  while (match(s, /`[^`]+`/)) s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fR" substr(s, RSTART + RLENGTH)
  while (match(s, /\*[^*]+\*/)) s = substr(s, 1, RSTART - 1) "\\fI" substr(s, RSTART + 1, RLENGTH - 2) "\\fR" substr(s, RSTART + RLENGTH)
  gsub(/-/, "\\-", s)
  if (s ~ /^[.']/) s = "\\&" s
  return s
}
function literal(s) {
  gsub(/\\/, "\\e", s)
  if (s ~ /^[.']/) s = "\\&" s
  return s
}
NR == 1 && /^% / {
  split(substr($0, 3), head, " \\| ")
  name = head[1]; sub(/\(.*/, "", name)
  section = head[1]; sub(/.*\(/, "", section); sub(/\).*/, "", section)
  printf ".TH \"%s\" \"%s\" \"\" \"p2pvpn %s\" \"%s\"\n", toupper(name), section, version, head[2]
  next
}
function flush() {
  if (pending == "") return
  if (pending_para) print ".PP"
  print inline(pending)
  pending = ""
}
in_code && /^```/ { print ".fi\n.RE"; in_code = 0; next }
in_code { print literal($0); next }
/^```/ { flush(); print ".PP\n.RS 4\n.nf"; in_code = 1; para = 1; next }
/^# / { flush(); print ".SH " toupper(substr($0, 3)); para = 1; next }
/^## / { flush(); print ".SS " inline(substr($0, 4)); para = 1; next }
/^: / {
  if (pending != "") { print ".TP\n" inline(pending); pending = "" }
  print inline(substr($0, 3)); para = 0; next
}
/^- / { flush(); print ".IP \\(bu 2\n" inline(substr($0, 3)); para = 0; next }
/^$/ { flush(); para = 1; next }
{
  # Held back one line: followed by ": ", it is the term of a tagged paragraph.
  flush(); pending = $0; pending_para = para; para = 0
}
END { flush(); if (in_code) print ".fi\n.RE" }
