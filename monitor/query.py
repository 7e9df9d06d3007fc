"""The watchlist query language: lexer, parser and syntax tree (``monitor.matching`` evaluates).

    acme                    the whole word, any case (also as #acme and @acme)
    "acme cloud"            an exact phrase (punctuation and spacing between words ignored)
    acme cloud              both (implicit AND; `AND` may be written)
    acme OR acmecorp        either (`|` also works); OR binds tighter than AND, as in
                            Google: `acme OR acmecorp -jobs` excludes jobs from both
    -spam  NOT spam         exclusion
    ( ... )                 grouping
    refund*                 prefix wildcard (at the end of a word only)
    site:example.com        the mention's URL is on that domain (or a subdomain)
    author:alice            posted by that author (`@alice` works too)
    lang:hi                 detected language
    "acme" near/3 refund    at most 3 other words between them, either order
    case:ACME               a case-sensitive term or phrase (`case:"Acme Cloud"`)

Errors are ``QueryError`` with the 0-based ``position``; the message says the column.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

from monitor.normalize import WORD, ZWNJ, fold_case, normalize_mapped


class QueryError(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at column {position + 1}")
        self.position = position


# Deeper nesting than this is a mistake, and would exhaust the stack while evaluating.
MAX_DEPTH = 40
MAX_NEAR_DISTANCE = 50
FIELDS = ("site", "author", "lang", "case")
_SITE = re.compile(r"^[a-z0-9\u00a0-\uffff]([a-z0-9\u00a0-\uffff.-]*[a-z0-9\u00a0-\uffff])?$")
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


# ------------------------------------------------------------------------ syntax tree


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # normalised words joined by spaces (case-folded unless case_sensitive)
    words: tuple[str, ...]
    prefix: bool = False  # the last word is a prefix (refund*)
    case_sensitive: bool = False
    raw: str = ""  # as written in the query, for display
    joins: tuple[int, ...] = ()  # i: words[i] and words[i + 1] were joined by a ZWNJ


@dataclass(frozen=True, slots=True)
class FieldFilter:
    name: str  # site | author | lang
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int


Node = Term | FieldFilter | Not | And | Or | Near


# ---------------------------------------------------------------------------- words


def is_unit_char(ch: str) -> bool:
    """Letters, combining marks and digits; a ZWNJ is a soft boundary, not part of a word."""
    return ch.isalnum() or (not ch.isascii() and unicodedata.category(ch)[0] == "M")


def split_units(text: str) -> tuple[list[tuple[int, int]], list[bool]]:
    """Word spans of normalised ``text`` and, between each pair, whether only a ZWNJ separates them."""
    spans = [match.span() for match in WORD.finditer(text)]
    soft = [text[a[1] : b[0]] == ZWNJ for a, b in itertools.pairwise(spans)]
    return spans, soft


def term_words(text: str, *, case_sensitive: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The words of a query term as the matcher compares them, and its ZWNJ joins."""
    mapped = normalize_mapped(text, keep_zwnj=True)
    spans, soft = split_units(mapped.text)
    words = tuple(
        mapped.text[s:e] if case_sensitive else fold_case(mapped.text[s:e]) for s, e in spans
    )
    return words, tuple(i for i, is_soft in enumerate(soft) if is_soft)


# ---------------------------------------------------------------------------- lexer


@dataclass(slots=True)
class _Token:
    kind: str  # word | phrase | lparen | rparen | or | and | not | minus | near
    value: str
    position: int
    distance: int = 0


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()|":
            tokens.append(_Token({"(": "lparen", ")": "rparen", "|": "or"}[ch], ch, i))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("unbalanced quote", i)
            tokens.append(_Token("phrase", query[i + 1 : end], i))
            i = end + 1
        elif (
            ch == "-"
            and i + 1 < n
            and not query[i + 1].isspace()
            and (not tokens or tokens[-1].kind != "word" or query[i - 1].isspace())
        ):
            tokens.append(_Token("minus", ch, i))
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in '()"|':
                i += 1
            word = query[start:i]
            if word.endswith(":") and i < n and query[i] == '"':
                end = query.find('"', i + 1)
                if end < 0:
                    raise QueryError("unbalanced quote", i)
                tokens.append(_Token("word", word + query[i : end + 1], start))
                i = end + 1
                continue
            tokens.append(_keyword(word, start))
    return tokens


def _keyword(word: str, position: int) -> _Token:
    if word in ("OR", "AND", "NOT"):
        return _Token(word.lower(), word, position)
    lowered = word.lower()
    if lowered.startswith("near/"):
        digits = lowered[5:]
        if not digits.isdecimal() or not 0 < int(digits) <= MAX_NEAR_DISTANCE:
            raise QueryError(f"near/N needs a distance from 1 to {MAX_NEAR_DISTANCE}", position)
        return _Token("near", word, position, int(digits))
    return _Token("word", word, position)


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("the query is empty", 0)
        node = self._and()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            if token.kind == "rparen":
                raise QueryError("unbalanced ')'", token.position)
            raise QueryError(f"unexpected {token.value!r}", token.position)
        if not _has_positive(node):
            raise QueryError("the query only excludes; add at least one term to look for", 0)
        return node

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _nest(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"nested more than {MAX_DEPTH} levels deep", token.position)

    def _and(self) -> Node:
        """Implicit AND binds loosest, as in Google: `a OR b -c` is `(a OR b) AND NOT c`."""
        children: list[Node] = []
        while (token := self._peek()) and token.kind != "rparen":
            if token.kind == "and":
                self.index += 1
                nxt = self._peek()
                if nxt is None or not children or nxt.kind in ("and", "or", "rparen"):
                    raise QueryError("AND needs a term on both sides", token.position)
                continue
            if token.kind == "or":
                raise QueryError("OR needs a term on both sides", token.position)
            if token.kind == "near":
                raise QueryError("near/N needs a word or phrase on both sides", token.position)
            children.append(self._or())
        if not children:
            token = self._peek()
            position = token.position if token else len(self.query)
            raise QueryError("expected a term", position)
        return children[0] if len(children) == 1 else And(tuple(children))

    def _or(self) -> Node:
        children = [self._near()]
        while (token := self._peek()) and token.kind == "or":
            self.index += 1
            nxt = self._peek()
            if nxt is None or nxt.kind in ("or", "and", "rparen", "near"):
                raise QueryError("OR needs a term on both sides", token.position)
            children.append(self._near())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _near(self) -> Node:
        left = self._unary()
        while (token := self._peek()) and token.kind == "near":
            self.index += 1
            nxt = self._peek()
            if nxt is None or nxt.kind not in ("word", "phrase"):
                raise QueryError("near/N needs a word or phrase on both sides", token.position)
            right = self._unary()
            if not (isinstance(left, Term) and isinstance(right, Term)):
                raise QueryError("near/N joins two words or phrases", token.position)
            left = Near(left, right, token.distance)
        return left

    def _unary(self) -> Node:
        token = self._peek()
        if token is None:
            raise QueryError("expected a term", len(self.query))
        if token.kind in ("not", "minus"):
            self.index += 1
            nxt = self._peek()
            if nxt is None or nxt.kind in ("or", "and", "rparen", "near"):
                raise QueryError(f"{token.value!r} needs a term after it", token.position)
            self._nest(token)
            child = self._unary()
            self.depth -= 1
            return Not(child)
        return self._primary()

    def _primary(self) -> Node:
        token = self._peek()
        assert token is not None
        self.index += 1
        if token.kind == "lparen":
            if (nxt := self._peek()) and nxt.kind == "rparen":
                raise QueryError("empty parentheses", token.position)
            self._nest(token)
            node = self._and()
            self.depth -= 1
            closing = self._peek()
            if closing is None or closing.kind != "rparen":
                raise QueryError("unbalanced '('", token.position)
            self.index += 1
            return node
        if token.kind == "phrase":
            return _text_node(token.value, token.position, case_sensitive=False)
        if token.kind == "word":
            return _word(token)
        raise QueryError(f"unexpected {token.value!r}", token.position)


def _word(token: _Token) -> Node:
    name, sep, value = token.value.partition(":")
    field = name.lower()
    if not (sep and field in FIELDS):
        return _text_node(token.value, token.position, case_sensitive=False)
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    if not value.strip():
        raise QueryError(f"{name}: needs a value", token.position)
    if field == "case":
        return _text_node(value, token.position + len(name) + 1, case_sensitive=True)
    return FieldFilter(field, _field_value(field, value, token.position))


def _text_node(raw: str, position: int, *, case_sensitive: bool) -> Term:
    prefix = raw.endswith("*")
    body = raw.rstrip("*")
    if "*" in body:
        raise QueryError("a wildcard * may only end a word", position + body.index("*"))
    words, joins = term_words(body, case_sensitive=case_sensitive)
    if not words:
        raise QueryError(f"{raw!r} has no letters or digits to match", position)
    if prefix and (len(words[-1]) < 2 or not is_unit_char(body[-1])):
        raise QueryError("a prefix* needs at least two letters right before the *", position)
    return Term(" ".join(words), words, prefix, case_sensitive, raw, joins)


def _field_value(name: str, value: str, position: int) -> str:
    value = fold_case(value.strip())
    if name == "author":
        return value.lstrip("@")
    if name == "site":
        value = value.removeprefix("http://").removeprefix("https://").split("/")[0]
        value = value.removeprefix("www.")
        if not _SITE.match(value):
            raise QueryError(f"site:{value} is not a domain name (e.g. site:example.com)", position)
        return value
    if not _LANG.match(value):
        raise QueryError(f"lang:{value} is not a language code (e.g. lang:en, lang:fa)", position)
    return value


def _has_positive(node: Node) -> bool:
    if isinstance(node, Term | FieldFilter | Near):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_has_positive(child) for child in node.children)
    return all(_has_positive(child) for child in node.children)


def parse_query(query: str) -> Node:
    """Parse a watchlist query; raise QueryError naming the column of the problem."""
    return _Parser(query).parse()


def needs_term(node: Node) -> bool:
    """Can ``node`` only be true when at least one of its (non-negated) terms occurs?

    The matcher evaluates watchlists whose query needs a term only when the automaton found
    one of their terms; the others (``site:x``, ``lang:fa -spam``) are evaluated every time.
    """
    if isinstance(node, Term | Near):
        return True
    if isinstance(node, FieldFilter | Not):
        return False
    if isinstance(node, And):
        return any(needs_term(child) for child in node.children)
    return all(needs_term(child) for child in node.children)


def uses_language(node: Node) -> bool:
    """Does the query test the mention's language (``lang:``)?"""
    if isinstance(node, FieldFilter):
        return node.name == "lang"
    if isinstance(node, Not):
        return uses_language(node.child)
    if isinstance(node, And | Or):
        return any(uses_language(child) for child in node.children)
    return False


def terms_of(node: Node) -> list[Term]:
    """Every term in the query, negated ones included."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return terms_of(node.child)
    if isinstance(node, Near):
        return terms_of(node.left) + terms_of(node.right)
    if isinstance(node, And | Or):
        return [term for child in node.children for term in terms_of(child)]
    return []


def search_terms(node: Node) -> list[str]:
    """Terms and phrases a mention may contain, for building platform search queries
    (negated terms left out, each as written, without wildcard or case: marker)."""
    found: list[str] = []

    def walk(current: Node, negated: bool) -> None:
        if isinstance(current, Term) and not negated:
            found.append(current.raw.rstrip("*").strip())
        elif isinstance(current, Not):
            walk(current.child, not negated)
        elif isinstance(current, And | Or):
            for child in current.children:
                walk(child, negated)
        elif isinstance(current, Near):
            walk(current.left, negated)
            walk(current.right, negated)

    walk(node, False)
    return list(dict.fromkeys(term for term in found if term))
