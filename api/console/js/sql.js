// A tiny SQL tokenizer for highlighting: tokens become <span class="tok-..."> elements with text nodes.

const KEYWORDS = new Set(`select from where and or not in is null as on join left right inner outer full cross
group by order having limit offset union all distinct case when then else end asc desc with insert update delete
into values set create table view index drop alter between like ilike exists count sum avg min max cast over
partition window filter true false interval date time timestamp natural using recursive returning any some
coalesce nullif round lower upper extract`.split(/\s+/));

const PATTERNS = [
  ['space', /^\s+/],
  ['comment', /^--[^\n]*/],
  ['comment', /^\/\*[\s\S]*?(\*\/|$)/],
  ['string', /^'(?:[^']|'')*'?/],
  ['ident', /^"(?:[^"]|"")*"?/],
  ['ident', /^`[^`]*`?/],
  ['ident', /^\[[^\]]*\]?/],
  ['number', /^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?/i],
  ['word', /^[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*/],
  ['param', /^[:$?@][\w]*/],
  ['operator', /^(?:<>|<=|>=|!=|\|\||::|[-+*/%=<>!|&^~])/],
  ['punct', /^[(),.;]/],
];

/** `[kind, text]` pairs covering `sql` exactly. */
export function tokenize(sql) {
  const tokens = [];
  let rest = String(sql);
  while (rest.length > 0) {
    let kind = 'other';
    let text = rest[0];
    for (const [name, pattern] of PATTERNS) {
      const match = pattern.exec(rest);
      if (match && match[0].length > 0) {
        kind = name;
        text = match[0];
        break;
      }
    }
    if (kind === 'word') kind = KEYWORDS.has(text.toLowerCase()) ? 'keyword' : 'ident';
    tokens.push([kind, text]);
    rest = rest.slice(text.length);
  }
  return tokens;
}

/** A <code> element showing `sql` highlighted. */
export function highlight(sql) {
  const code = document.createElement('code');
  code.className = 'sql';
  for (const [kind, text] of tokenize(sql)) {
    if (kind === 'space' || kind === 'other') {
      code.append(document.createTextNode(text));
    } else {
      const span = document.createElement('span');
      span.className = `tok-${kind}`;
      span.textContent = text;
      code.append(span);
    }
  }
  return code;
}
