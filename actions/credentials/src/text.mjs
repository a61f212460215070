// Text from a remote party made fit for the job's log. Pure, no imports.

// Control and format characters: C0, DEL, C1, the Unicode line and paragraph
// separators, and the invisible format characters (bidirectional overrides,
// zero-width spaces) that would make a log line show other than it says.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
const UNPRINTABLE_ALL = /[\p{Cc}\p{Cf}\u2028\u2029]+/gu;

// hasUnprintable reports whether s has a character no log line should carry.
export function hasUnprintable(s) {
  return UNPRINTABLE.test(s);
}

// MAX_TEXT is the most of a bridge's free text (an error message) shown.
export const MAX_TEXT = 500;

// safeText makes free text fit for the middle of one log line: every run of
// control or format characters (a newline, a carriage return, an escape
// sequence) becomes one space, so the text cannot start a line of its own;
// a leading `::` is broken up (the runner reads a line as a command when it
// starts with `::` after blanks); the legacy command marker `##[` becomes
// `##(`; and the text is cut at max characters. `::` inside the text (an
// ARN, arn:aws:iam::123456789012:role/x) is kept: only a line start is a
// command.
export function safeText(value, max = MAX_TEXT) {
  let s = String(value ?? '').replace(UNPRINTABLE_ALL, ' ').replace(/\s+/g, ' ').trim();
  s = s.replace(/##\[/g, '##(');
  if (s.startsWith('::')) s = `: ${s.slice(1)}`;
  const chars = [...s];
  if (chars.length > max) s = `${chars.slice(0, max).join('')}…`;
  return s;
}
