/* query/sql.c -- the SQL front end: a lexer and a recursive-descent parser
 * for the subset in sql.h, producing a sql_stmt_t. Every node, string and
 * array of a statement is registered with the statement, so one destroy
 * frees it all and an error midway leaks nothing. Knows nothing of schemas,
 * sources or types beyond literals (that is plan.c). */
#include "sql.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sp_util.h"

/* Longest SQL text accepted: far above any real query, low enough that a
 * pasted file or a runaway generator fails at once with a clear message. */
#define SQL_MAX_TEXT (1u << 20)

/* Deepest nesting of parentheses and NOT in a condition. The parser
 * recurses per level, so this bounds its stack; chains of AND / OR are
 * parsed in a loop and built as balanced trees, so they do not count. */
#define SQL_MAX_DEPTH 200

/* ---- the statement and what it owns --------------------------------------- */

/* The public statement plus the list of every allocation hanging off it. */
typedef struct stmt_impl {
    sql_stmt_t st; /* first: sql_stmt_destroy converts back */
    void **owned;
    size_t nowned, owned_cap;
} stmt_impl_t;

static void *stmt_alloc(stmt_impl_t *s, size_t n)
{
    if (s->nowned == s->owned_cap) {
        s->owned_cap = s->owned_cap ? 2 * s->owned_cap : 64;
        s->owned = sp_xrealloc(s->owned, s->owned_cap * sizeof(void *));
    }
    void *p = sp_xcalloc(1, n);
    s->owned[s->nowned++] = p;
    return p;
}

static char *stmt_strndup(stmt_impl_t *s, const char *text, size_t n)
{
    char *p = stmt_alloc(s, n + 1);
    memcpy(p, text, n);
    return p;
}

void sql_stmt_destroy(sql_stmt_t **st)
{
    if (st == NULL || *st == NULL)
        return;
    stmt_impl_t *s = (stmt_impl_t *)*st;
    for (size_t i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    free(s->owned);
    free(s);
    *st = NULL;
}

void sql_position(const char *text, size_t pos, int *line, int *col)
{
    /* Columns count characters (UTF-8 lead bytes), as an editor shows them. */
    int l = 1, c = 1;
    for (size_t i = 0; i < pos && text[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            if (l < INT_MAX)
                l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80 && c < INT_MAX) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* ---- tokens ---------------------------------------------------------------- */

typedef enum tok_kind {
    TOK_EOF,
    TOK_IDENT,  /* bare word, keyword or not */
    TOK_QIDENT, /* `quoted identifier` */
    TOK_STRING, /* 'string' or "string" */
    TOK_NUMBER,
    TOK_COMMA,
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_STAR,
    TOK_SEMI,
    TOK_PLUS,
    TOK_MINUS,
    TOK_CMP, /* = == != <> < <= > >=; the operator in token.op */
} tok_kind_t;

/* Reserved words: never a bare column, alias or source name. */
typedef enum kw {
    KW_NONE,
    KW_SELECT, KW_FROM, KW_WHERE, KW_GROUP, KW_BY, KW_AS, KW_AND, KW_OR,
    KW_NOT, KW_IS, KW_NULL, KW_IN, KW_TRUE, KW_FALSE, KW_DISTINCT,
} kw_t;

static const char *const kw_names[] = {
    NULL, "SELECT", "FROM", "WHERE", "GROUP", "BY", "AS", "AND", "OR",
    "NOT", "IS", "NULL", "IN", "TRUE", "FALSE", "DISTINCT",
};

typedef struct token {
    tok_kind_t kind;
    kw_t kw;         /* TOK_IDENT that is a reserved word */
    sql_cmp_op_t op; /* TOK_CMP */
    size_t start, end;
} token_t;

typedef struct parser {
    const char *text;
    size_t len;
    token_t tok;       /* the current token */
    size_t prev_end;   /* end of the token before it */
    stmt_impl_t *stmt;
    sp_err_t *err;
    int depth;         /* parentheses and NOT around the current point */
    /* Scratch stacks for AND / OR chains (nested chains push above their
     * parent's part and pop back) and for the IN list being read. */
    sql_expr_t **chain;
    size_t *chain_pos;
    size_t nchain, chain_cap;
    sp_value_t *list;
    size_t nlist, list_cap;
} parser_t;

static kw_t keyword_of(const char *s, size_t n)
{
    for (size_t k = 1; k < sizeof kw_names / sizeof kw_names[0]; k++)
        if (strlen(kw_names[k]) == n && strncasecmp(kw_names[k], s, n) == 0)
            return (kw_t)k;
    return KW_NONE;
}

static bool word_is(const parser_t *p, const token_t *t, const char *word)
{
    size_t n = t->end - t->start;
    return t->kind == TOK_IDENT && strlen(word) == n &&
           strncasecmp(word, p->text + t->start, n) == 0;
}

/* ---- errors ---------------------------------------------------------------- */

static int error_at(parser_t *p, size_t pos, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int sql_error_vat(sp_err_t *err, int rc, const char *text, size_t pos, const char *kind,
                  const char *fmt, va_list ap)
{
    char msg[SP_ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line, col;
    sql_position(text, pos, &line, &col);
    return sp_err_set(err, rc, "SQL %s at line %d, column %d: %s", kind, line, col, msg);
}

/* "SQL <kind> at line L, column C: <message>" with SP_EPARSE. */
static int error_at(parser_t *p, size_t pos, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sql_error_vat(p->err, SP_EPARSE, p->text, pos, kind, fmt, ap);
    va_end(ap);
    return rc;
}

#define SYNTAX "syntax error"
#define REFUSED "error" /* valid SQL that spate does not run */

/* The token as a message shows it: quoted, at most 40 bytes (cut at a
 * character boundary), control bytes escaped so the message stays one line. */
static void describe_token(const parser_t *p, const token_t *t, char *out, size_t outlen)
{
    if (t->kind == TOK_EOF) {
        snprintf(out, outlen, "end of input");
        return;
    }
    sp_buf_t b = SP_BUF_INIT;
    size_t n = t->end - t->start, cut = n;
    if (cut > 40) {
        cut = 40;
        while (cut > 0 && ((unsigned char)p->text[t->start + cut] & 0xC0) == 0x80)
            cut--;
    }
    sp_buf_putc(&b, '\'');
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)p->text[t->start + i];
        if (c == '\n')
            sp_buf_append(&b, "\\n", 2);
        else if (c == '\t')
            sp_buf_append(&b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f)
            sp_buf_printf(&b, "\\x%02x", c);
        else
            sp_buf_putc(&b, (char)c);
    }
    sp_buf_append(&b, cut < n ? "'..." : "'", cut < n ? 4 : 1);
    snprintf(out, outlen, "%s", sp_buf_cstr(&b));
    sp_buf_free(&b);
}

/* "expected <what>, found <token>" at the current token. */
static int expected(parser_t *p, const char *what)
{
    char found[256];
    describe_token(p, &p->tok, found, sizeof found);
    return error_at(p, p->tok.start, SYNTAX, "expected %s, found %s", what, found);
}

/* Where a clause may end: name a clause spate does not have, else say what
 * was expected. */
static int expected_end(parser_t *p, const char *what)
{
    static const struct {
        const char *word, *clause;
    } clauses[] = {
        {"HAVING", "HAVING"}, {"ORDER", "ORDER BY"}, {"LIMIT", "LIMIT"},
        {"JOIN", "JOIN"},     {"UNION", "UNION"},    {"WINDOW", "WINDOW"},
    };
    for (size_t i = 0; i < sizeof clauses / sizeof clauses[0]; i++)
        if (word_is(p, &p->tok, clauses[i].word))
            return error_at(p, p->tok.start, REFUSED, "%s is not supported", clauses[i].clause);
    return expected(p, what);
}

/* ---- lexer ----------------------------------------------------------------- */

/* Offset of the first byte that is not well-formed UTF-8, or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* no overlong forms */
            if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return i;
        }
        if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static bool is_ident_char(unsigned char c) { return is_ident_start(c) || is_digit(c); }

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Scan the string literal opening at start. Sets *end past its closing
 * quote. When out is not NULL, writes the decoded bytes there (never more
 * than the literal's length) and their count to *outlen. Escapes as Spark:
 * \' \" \\ \n \t \r \b \0 \uXXXX; a backslash before any other character
 * stands for that character. */
static int scan_string(parser_t *p, size_t start, size_t *end, char *out, size_t *outlen)
{
    const char *s = p->text;
    char q = s[start];
    size_t i = start + 1, n = 0;
    for (;;) {
        if (i >= p->len)
            return error_at(p, start, SYNTAX, "unterminated string literal");
        char c = s[i];
        if (c == q) {
            if (i + 1 < p->len && s[i + 1] == q) { /* '' stands for ' */
                if (out)
                    out[n] = q;
                n++;
                i += 2;
                continue;
            }
            break;
        }
        if (c != '\\') {
            if (out)
                out[n] = c;
            n++;
            i++;
            continue;
        }
        if (i + 1 >= p->len)
            return error_at(p, start, SYNTAX, "unterminated string literal");
        char e = s[i + 1], d;
        switch (e) {
        case 'n': d = '\n'; break;
        case 't': d = '\t'; break;
        case 'r': d = '\r'; break;
        case 'b': d = '\b'; break;
        case '0': d = '\0'; break;
        case 'u': {
            unsigned cp = 0;
            for (size_t k = 0; k < 4; k++) {
                int h = i + 2 + k < p->len ? hex_value((unsigned char)s[i + 2 + k]) : -1;
                if (h < 0)
                    return error_at(p, i, SYNTAX, "\\u needs four hex digits");
                cp = cp << 4 | (unsigned)h;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                return error_at(p, i, SYNTAX, "\\u%04X is a surrogate, not a character", cp);
            char tmp[3];
            size_t m = utf8_put(tmp, cp);
            if (out)
                memcpy(out + n, tmp, m);
            n += m;
            i += 6;
            continue;
        }
        default: d = e; break; /* \' \" \\ and any other character */
        }
        if (out)
            out[n] = d;
        n++;
        i += 2;
    }
    *end = i + 1;
    if (outlen)
        *outlen = n;
    return 0;
}

/* Scan the `quoted identifier` at start (`` stands for `). Same contract
 * as scan_string. */
static int scan_qident(parser_t *p, size_t start, size_t *end, char *out, size_t *outlen)
{
    const char *s = p->text;
    size_t i = start + 1, n = 0;
    for (;;) {
        if (i >= p->len)
            return error_at(p, start, SYNTAX, "unterminated quoted identifier");
        unsigned char c = (unsigned char)s[i];
        if (c == '`') {
            if (i + 1 < p->len && s[i + 1] == '`') {
                if (out)
                    out[n] = '`';
                n++;
                i += 2;
                continue;
            }
            break;
        }
        if (c < 0x20 || c == 0x7f)
            return error_at(p, i, SYNTAX, "control character 0x%02x in a quoted identifier", c);
        if (out)
            out[n] = (char)c;
        n++;
        i++;
    }
    if (n == 0)
        return error_at(p, start, SYNTAX, "empty quoted identifier");
    *end = i + 1;
    if (outlen)
        *outlen = n;
    return 0;
}

/* Scan a number at start: digits [. digits] [e [+-] digits], or . digits. */
static int scan_number(parser_t *p, size_t start, size_t *end)
{
    const char *s = p->text;
    size_t i = start;
    bool digits = false;
    while (i < p->len && is_digit((unsigned char)s[i]))
        i++, digits = true;
    if (i < p->len && s[i] == '.') {
        i++;
        while (i < p->len && is_digit((unsigned char)s[i]))
            i++, digits = true;
    }
    bool bad = !digits;
    if (!bad && i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        bad = !(i < p->len && is_digit((unsigned char)s[i]));
        while (i < p->len && is_digit((unsigned char)s[i]))
            i++;
    }
    while (i < p->len && (is_ident_char((unsigned char)s[i]) || s[i] == '.'))
        i++, bad = true;
    if (bad) {
        token_t t = {.kind = TOK_NUMBER, .start = start, .end = i};
        char text[256];
        describe_token(p, &t, text, sizeof text);
        return error_at(p, start, SYNTAX, "malformed number %s", text);
    }
    *end = i;
    return 0;
}

/* Lex the token at or after pos into *t. */
static int lex(parser_t *p, size_t pos, token_t *t)
{
    const char *s = p->text;
    while (pos < p->len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' ||
                            s[pos] == '\r' || s[pos] == '\f' || s[pos] == '\v'))
        pos++;
    *t = (token_t){.kind = TOK_EOF, .kw = KW_NONE, .start = pos, .end = pos};
    if (pos >= p->len)
        return 0;
    unsigned char c = (unsigned char)s[pos];
    unsigned char c1 = pos + 1 < p->len ? (unsigned char)s[pos + 1] : 0;
    size_t end = pos + 1;
    switch (c) {
    case ',': t->kind = TOK_COMMA; break;
    case '(': t->kind = TOK_LPAREN; break;
    case ')': t->kind = TOK_RPAREN; break;
    case '*': t->kind = TOK_STAR; break;
    case ';': t->kind = TOK_SEMI; break;
    case '+': t->kind = TOK_PLUS; break;
    case '-': t->kind = TOK_MINUS; break;
    case '=':
        t->kind = TOK_CMP, t->op = SQL_CMP_EQ;
        end += c1 == '=';
        break;
    case '<':
        t->kind = TOK_CMP, t->op = c1 == '=' ? SQL_CMP_LE : c1 == '>' ? SQL_CMP_NE : SQL_CMP_LT;
        end += c1 == '=' || c1 == '>';
        break;
    case '>':
        t->kind = TOK_CMP, t->op = c1 == '=' ? SQL_CMP_GE : SQL_CMP_GT;
        end += c1 == '=';
        break;
    case '!':
        if (c1 != '=')
            return error_at(p, pos, SYNTAX, "unexpected character '!' (did you mean '!='?)");
        t->kind = TOK_CMP, t->op = SQL_CMP_NE;
        end++;
        break;
    case '\'':
    case '"': {
        int rc = scan_string(p, pos, &end, NULL, NULL);
        if (rc != 0)
            return rc;
        t->kind = TOK_STRING;
        break;
    }
    case '`': {
        int rc = scan_qident(p, pos, &end, NULL, NULL);
        if (rc != 0)
            return rc;
        t->kind = TOK_QIDENT;
        break;
    }
    default:
        if (is_digit(c) || (c == '.' && is_digit(c1))) {
            int rc = scan_number(p, pos, &end);
            if (rc != 0)
                return rc;
            t->kind = TOK_NUMBER;
        } else if (is_ident_start(c)) {
            while (end < p->len && is_ident_char((unsigned char)s[end]))
                end++;
            t->kind = TOK_IDENT;
            t->kw = keyword_of(s + pos, end - pos);
        } else if (c < 0x20 || c == 0x7f) {
            return error_at(p, pos, SYNTAX, "unexpected byte 0x%02x", c);
        } else {
            return error_at(p, pos, SYNTAX, "unexpected character '%c'", c);
        }
    }
    t->end = end;
    return 0;
}

static int advance(parser_t *p)
{
    p->prev_end = p->tok.end;
    return lex(p, p->tok.end, &p->tok);
}

static int peek(parser_t *p, token_t *t) { return lex(p, p->tok.end, t); }

static bool at_kw(const parser_t *p, kw_t kw) { return p->tok.kind == TOK_IDENT && p->tok.kw == kw; }

/* A name: a bare word that is not reserved, or a quoted identifier. */
static bool at_name(const parser_t *p)
{
    return (p->tok.kind == TOK_IDENT && p->tok.kw == KW_NONE) || p->tok.kind == TOK_QIDENT;
}

/* The current name token, decoded into the statement; then advance. */
static int take_name(parser_t *p, char **name, size_t *pos)
{
    const token_t *t = &p->tok;
    *pos = t->start;
    if (t->kind == TOK_IDENT) {
        *name = stmt_strndup(p->stmt, p->text + t->start, t->end - t->start);
    } else {
        size_t end, n;
        *name = stmt_alloc(p->stmt, t->end - t->start + 1);
        int rc = scan_qident(p, t->start, &end, *name, &n);
        if (rc != 0)
            return rc;
    }
    return advance(p);
}

/* ---- literals -------------------------------------------------------------- */

/* literal := [+-] number | string | TRUE | FALSE | NULL; then advance. */
static int parse_literal(parser_t *p, sp_value_t *v, const char *what)
{
    if (p->tok.kind == TOK_STRING) {
        size_t end, n;
        char *s = stmt_alloc(p->stmt, p->tok.end - p->tok.start);
        int rc = scan_string(p, p->tok.start, &end, s, &n);
        if (rc != 0)
            return rc;
        v->type = SP_TYPE_STRING;
        v->u.s.ptr = s;
        v->u.s.len = (uint32_t)n; /* n < SQL_MAX_TEXT */
        return advance(p);
    }
    if (at_kw(p, KW_TRUE) || at_kw(p, KW_FALSE)) {
        v->type = SP_TYPE_BOOLEAN;
        v->u.b = at_kw(p, KW_TRUE);
        return advance(p);
    }
    if (at_kw(p, KW_NULL)) {
        *v = SP_VALUE_NULL;
        return advance(p);
    }
    size_t sign_pos = p->tok.start;
    char sign = 0;
    if (p->tok.kind == TOK_PLUS || p->tok.kind == TOK_MINUS) {
        sign = p->tok.kind == TOK_MINUS ? '-' : '+';
        int rc = advance(p);
        if (rc != 0)
            return rc;
        if (p->tok.kind != TOK_NUMBER)
            return expected(p, sign == '-' ? "a number after '-'" : "a number after '+'");
    }
    if (p->tok.kind != TOK_NUMBER)
        return expected(p, what);
    /* Convert sign and digits together so -9223372036854775808 is a BIGINT. */
    size_t n = p->tok.end - p->tok.start;
    char *num = sp_xmalloc(n + 2), *end;
    num[0] = sign ? sign : '+';
    memcpy(num + 1, p->text + p->tok.start, n);
    num[n + 1] = '\0';
    bool integral = strcspn(num, ".eE") == n + 1;
    errno = 0;
    long long i = integral ? strtoll(num, &end, 10) : 0;
    if (integral && errno == 0) {
        v->type = SP_TYPE_BIGINT;
        v->u.i = i;
    } else { /* a decimal, or an integer beyond int64: DOUBLE */
        v->type = SP_TYPE_DOUBLE;
        v->u.d = strtod(num, &end);
    }
    free(num);
    if (v->type == SP_TYPE_DOUBLE && isinf(v->u.d)) {
        char text[256];
        describe_token(p, &p->tok, text, sizeof text);
        return error_at(p, sign_pos, SYNTAX, "number %s is out of range for DOUBLE", text);
    }
    return advance(p);
}

/* ---- conditions ------------------------------------------------------------ */

static sql_expr_t *new_expr(parser_t *p, sql_expr_kind_t kind, size_t pos)
{
    sql_expr_t *e = stmt_alloc(p->stmt, sizeof *e);
    e->kind = kind;
    e->pos = pos;
    return e;
}

static int parse_or(parser_t *p, sql_expr_t **out);

/* operand := column | literal */
static int parse_operand(parser_t *p, sql_expr_t **out)
{
    if (at_name(p)) {
        if (p->tok.kind == TOK_IDENT) {
            token_t next;
            int rc = peek(p, &next);
            if (rc != 0)
                return rc;
            if (next.kind == TOK_LPAREN) {
                char name[256];
                describe_token(p, &p->tok, name, sizeof name);
                return error_at(p, p->tok.start, REFUSED,
                                "function calls are not supported in WHERE, found %s", name);
            }
        }
        sql_expr_t *e = new_expr(p, SQL_EXPR_COLUMN, p->tok.start);
        *out = e;
        return take_name(p, &e->column, &e->pos);
    }
    sql_expr_t *e = new_expr(p, SQL_EXPR_LITERAL, p->tok.start);
    *out = e;
    return parse_literal(p, &e->literal, "a column or a literal");
}

/* operand IN '(' literal (',' literal)* ')', at the '('. */
static int parse_in_list(parser_t *p, sql_expr_t *e)
{
    if (p->tok.kind != TOK_LPAREN)
        return expected(p, "'(' after IN");
    int rc = advance(p);
    p->nlist = 0;
    for (;;) {
        if (rc != 0)
            return rc;
        if (p->nlist == p->list_cap) {
            p->list_cap = p->list_cap ? 2 * p->list_cap : 16;
            p->list = sp_xrealloc(p->list, p->list_cap * sizeof(sp_value_t));
        }
        rc = parse_literal(p, &p->list[p->nlist], "a literal in the IN list");
        if (rc != 0)
            return rc;
        p->nlist++;
        if (p->tok.kind == TOK_RPAREN)
            break;
        if (p->tok.kind != TOK_COMMA)
            return expected(p, "',' or ')' in the IN list");
        rc = advance(p);
    }
    e->list = stmt_alloc(p->stmt, p->nlist * sizeof(sp_value_t));
    memcpy(e->list, p->list, p->nlist * sizeof(sp_value_t));
    e->nlist = p->nlist;
    return advance(p);
}

/* operand cmp operand | operand IS [NOT] NULL | operand [NOT] IN (...) */
static int parse_predicate(parser_t *p, sql_expr_t **out)
{
    sql_expr_t *left;
    int rc = parse_operand(p, &left);
    if (rc != 0)
        return rc;
    size_t pos = p->tok.start;
    if (p->tok.kind == TOK_CMP) {
        sql_expr_t *e = new_expr(p, SQL_EXPR_CMP, pos);
        e->op = p->tok.op;
        e->args[0] = left;
        *out = e;
        if ((rc = advance(p)) != 0)
            return rc;
        return parse_operand(p, &e->args[1]);
    }
    if (at_kw(p, KW_IS)) {
        sql_expr_t *e = new_expr(p, SQL_EXPR_IS_NULL, pos);
        e->args[0] = left;
        *out = e;
        if ((rc = advance(p)) != 0)
            return rc;
        if (at_kw(p, KW_NOT)) {
            e->negated = true;
            if ((rc = advance(p)) != 0)
                return rc;
        }
        if (!at_kw(p, KW_NULL))
            return expected(p, e->negated ? "NULL after IS NOT" : "NULL or NOT NULL after IS");
        return advance(p);
    }
    bool negated = false;
    if (at_kw(p, KW_NOT)) {
        negated = true;
        if ((rc = advance(p)) != 0)
            return rc;
        if (!at_kw(p, KW_IN))
            return expected(p, "IN after NOT");
    }
    if (at_kw(p, KW_IN)) {
        sql_expr_t *e = new_expr(p, SQL_EXPR_IN, pos);
        e->negated = negated;
        e->args[0] = left;
        *out = e;
        if ((rc = advance(p)) != 0)
            return rc;
        return parse_in_list(p, e);
    }
    return expected(p, "a comparison (=, !=, <>, <, <=, >, >=), IS or IN");
}

static int enter(parser_t *p)
{
    if (++p->depth > SQL_MAX_DEPTH)
        return error_at(p, p->tok.start, SYNTAX,
                        "condition nested too deeply (more than %d levels of parentheses and NOT)",
                        SQL_MAX_DEPTH);
    return 0;
}

/* NOT cond | '(' cond ')' | predicate */
static int parse_not(parser_t *p, sql_expr_t **out)
{
    int rc;
    if (at_kw(p, KW_NOT)) {
        sql_expr_t *e = new_expr(p, SQL_EXPR_NOT, p->tok.start);
        *out = e;
        if ((rc = enter(p)) != 0 || (rc = advance(p)) != 0 || (rc = parse_not(p, &e->args[0])) != 0)
            return rc;
        p->depth--;
        return 0;
    }
    if (p->tok.kind == TOK_LPAREN) {
        if ((rc = enter(p)) != 0 || (rc = advance(p)) != 0 || (rc = parse_or(p, out)) != 0)
            return rc;
        if (p->tok.kind != TOK_RPAREN)
            return expected(p, "AND, OR or ')'");
        p->depth--;
        return advance(p);
    }
    return parse_predicate(p, out);
}

/* The balanced tree of kind over chain[lo, hi): the operator between
 * operands i-1 and i is at chain_pos[i]. Left halves take the extra operand,
 * so a chain of up to three reads as the usual left-deep tree. */
static sql_expr_t *build_chain(parser_t *p, sql_expr_kind_t kind, size_t lo, size_t hi)
{
    if (hi - lo == 1)
        return p->chain[lo];
    size_t mid = lo + (hi - lo + 1) / 2;
    sql_expr_t *e = new_expr(p, kind, p->chain_pos[mid]);
    e->args[0] = build_chain(p, kind, lo, mid);
    e->args[1] = build_chain(p, kind, mid, hi);
    return e;
}

/* operand (op operand)* with op AND (sub = parse_not) or OR (sub = parse_and). */
static int parse_chain(parser_t *p, kw_t op, int (*sub)(parser_t *, sql_expr_t **), sql_expr_t **out)
{
    size_t base = p->nchain;
    size_t op_pos = 0;
    for (;;) {
        sql_expr_t *e;
        int rc = sub(p, &e);
        if (rc != 0)
            return rc;
        if (p->nchain == p->chain_cap) {
            p->chain_cap = p->chain_cap ? 2 * p->chain_cap : 32;
            p->chain = sp_xrealloc(p->chain, p->chain_cap * sizeof *p->chain);
            p->chain_pos = sp_xrealloc(p->chain_pos, p->chain_cap * sizeof *p->chain_pos);
        }
        p->chain[p->nchain] = e;
        p->chain_pos[p->nchain++] = op_pos;
        if (!at_kw(p, op))
            break;
        op_pos = p->tok.start;
        if ((rc = advance(p)) != 0)
            return rc;
    }
    *out = build_chain(p, op == KW_AND ? SQL_EXPR_AND : SQL_EXPR_OR, base, p->nchain);
    p->nchain = base;
    return 0;
}

static int parse_and(parser_t *p, sql_expr_t **out) { return parse_chain(p, KW_AND, parse_not, out); }

static int parse_or(parser_t *p, sql_expr_t **out) { return parse_chain(p, KW_OR, parse_and, out); }

/* ---- the query ------------------------------------------------------------- */

static const struct {
    const char *name;
    sql_agg_func_t func;
} agg_names[] = {
    {"count", SQL_AGG_COUNT}, {"sum", SQL_AGG_SUM}, {"min", SQL_AGG_MIN},
    {"max", SQL_AGG_MAX},     {"avg", SQL_AGG_AVG},
};

/* name '(' ('*' | column) ')' at the function name. */
static int parse_aggregate(parser_t *p, sql_item_t *it)
{
    const char *fname = NULL;
    for (size_t i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++)
        if (word_is(p, &p->tok, agg_names[i].name))
            fname = agg_names[i].name, it->agg = agg_names[i].func;
    if (fname == NULL) {
        char name[256];
        describe_token(p, &p->tok, name, sizeof name);
        return error_at(p, p->tok.start, REFUSED,
                        "unknown function %s (spate runs count, sum, min, max and avg)", name);
    }
    int rc;
    if ((rc = advance(p)) != 0 || (rc = advance(p)) != 0) /* the name, '(' */
        return rc;
    if (at_kw(p, KW_DISTINCT))
        return error_at(p, p->tok.start, REFUSED, "%s(DISTINCT ...) is not supported", fname);
    if ((p->tok.kind == TOK_STAR || p->tok.kind == TOK_NUMBER) && it->agg == SQL_AGG_COUNT) {
        /* count(*), and count(1) as Spark users write it: a number is never
         * NULL, so both count rows (Spark names both "count(1)") */
        it->agg = SQL_AGG_COUNT_STAR;
        it->column_pos = p->tok.start;
        rc = advance(p);
    } else if (at_name(p)) {
        rc = take_name(p, &it->column, &it->column_pos);
    } else {
        char what[64];
        snprintf(what, sizeof what, it->agg == SQL_AGG_COUNT ? "a column, '*' or 1 in %s()" : "a column in %s()",
                 fname);
        return expected(p, what);
    }
    if (rc != 0)
        return rc;
    if (p->tok.kind != TOK_RPAREN)
        return expected(p, "')'");
    return advance(p);
}

/* (column | aggregate) [[AS] alias] */
static int parse_item(parser_t *p, sql_item_t *it)
{
    int rc = 0;
    it->pos = p->tok.start;
    if (p->tok.kind == TOK_STAR)
        return error_at(p, p->tok.start, REFUSED,
                        "SELECT * is not supported: name the grouping columns and the aggregates");
    token_t next = {0};
    if (p->tok.kind == TOK_IDENT && (rc = peek(p, &next)) != 0)
        return rc;
    if (p->tok.kind == TOK_IDENT && p->tok.kw == KW_NONE && next.kind == TOK_LPAREN)
        rc = parse_aggregate(p, it);
    else if (at_name(p))
        rc = take_name(p, &it->column, &it->column_pos);
    else
        return expected(p, "a column or an aggregate");
    if (rc != 0)
        return rc;
    it->text = stmt_strndup(p->stmt, p->text + it->pos, p->prev_end - it->pos);
    size_t alias_pos;
    if (at_kw(p, KW_AS)) {
        if ((rc = advance(p)) != 0)
            return rc;
        if (!at_name(p))
            return expected(p, "an alias after AS");
        return take_name(p, &it->alias, &alias_pos);
    }
    /* A bare alias can only be followed by ',' or FROM; otherwise the word
     * is more likely a misspelt keyword, and the error is better there. */
    if (!at_name(p))
        return 0;
    if ((rc = peek(p, &next)) != 0)
        return rc;
    if (next.kind == TOK_COMMA || (next.kind == TOK_IDENT && next.kw == KW_FROM))
        return take_name(p, &it->alias, &alias_pos);
    return 0;
}

/* Append a copy of *elem to the array *arr of *n elements. The capacity is
 * implicit: 4, then doubled whenever *n reaches a power of two. */
static void push(void **arr, size_t *n, const void *elem, size_t size)
{
    if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0))
        *arr = sp_xrealloc(*arr, (*n ? 2 * *n : 4) * size);
    memcpy((char *)*arr + *n * size, elem, size);
    (*n)++;
}

static int parse_query(parser_t *p, sql_stmt_t *st, sql_item_t **items, sql_group_t **groups)
{
    int rc;
    if (!at_kw(p, KW_SELECT))
        return expected(p, "SELECT");
    if ((rc = advance(p)) != 0)
        return rc;
    if (at_kw(p, KW_DISTINCT))
        return error_at(p, p->tok.start, REFUSED, "SELECT DISTINCT is not supported: use GROUP BY");
    for (;;) {
        sql_item_t it = {0};
        rc = parse_item(p, &it);
        if (rc != 0)
            return rc;
        push((void **)items, &st->nitems, &it, sizeof it);
        if (p->tok.kind != TOK_COMMA)
            break;
        if ((rc = advance(p)) != 0)
            return rc;
    }
    if (!at_kw(p, KW_FROM))
        return expected(p, "FROM");
    if ((rc = advance(p)) != 0)
        return rc;
    if (!at_name(p))
        return expected(p, "a source name after FROM");
    if ((rc = take_name(p, &st->from, &st->from_pos)) != 0)
        return rc;
    const char *what = "WHERE, GROUP BY or end of query";
    if (at_kw(p, KW_WHERE)) {
        if ((rc = advance(p)) != 0 || (rc = parse_or(p, &st->where)) != 0)
            return rc;
        what = "AND, OR, GROUP BY or end of query";
    }
    if (at_kw(p, KW_GROUP)) {
        if ((rc = advance(p)) != 0)
            return rc;
        if (!at_kw(p, KW_BY))
            return expected(p, "BY after GROUP");
        do {
            if ((rc = advance(p)) != 0)
                return rc;
            if (!at_name(p))
                return expected(p, "a column in GROUP BY");
            sql_group_t g;
            if ((rc = take_name(p, &g.column, &g.pos)) != 0)
                return rc;
            push((void **)groups, &st->ngroups, &g, sizeof g);
        } while (p->tok.kind == TOK_COMMA);
        what = "',' or end of query";
    }
    if (p->tok.kind == TOK_SEMI) {
        if ((rc = advance(p)) != 0)
            return rc;
        what = "end of query after ';'";
    }
    if (p->tok.kind != TOK_EOF)
        return expected_end(p, what);
    return 0;
}

int sql_parse(const char *text, sql_stmt_t **out, sp_err_t *err)
{
    *out = NULL;
    if (text == NULL)
        return sp_err_set(err, SP_EPARSE, "SQL syntax error: no query text");
    size_t len = strnlen(text, SQL_MAX_TEXT + 1);
    if (len > SQL_MAX_TEXT)
        return sp_err_set(err, SP_EPARSE, "SQL syntax error: the query is longer than %u bytes",
                          SQL_MAX_TEXT);
    stmt_impl_t *s = sp_xcalloc(1, sizeof *s);
    parser_t p = {.text = text, .len = len, .stmt = s, .err = err};
    sql_item_t *items = NULL;
    sql_group_t *groups = NULL;
    int rc;
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len)
        rc = error_at(&p, bad, SYNTAX, "invalid UTF-8 byte 0x%02x", (unsigned char)text[bad]);
    else if ((rc = lex(&p, 0, &p.tok)) == 0)
        rc = parse_query(&p, &s->st, &items, &groups);
    free(p.chain);
    free(p.chain_pos);
    free(p.list);
    if (rc == 0) {
        sql_stmt_t *st = &s->st;
        st->items = stmt_alloc(s, st->nitems * sizeof *items);
        memcpy(st->items, items, st->nitems * sizeof *items);
        if (st->ngroups) {
            st->groups = stmt_alloc(s, st->ngroups * sizeof *groups);
            memcpy(st->groups, groups, st->ngroups * sizeof *groups);
        }
        st->text = stmt_strndup(s, text, len);
        *out = st;
    } else {
        sql_stmt_t *st = &s->st;
        sql_stmt_destroy(&st);
    }
    free(items);
    free(groups);
    return rc;
}
