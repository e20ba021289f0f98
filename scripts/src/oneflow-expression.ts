/**
 * A recognizer for OneFlow's elasticity expressions, driven by the grammar facts of
 * contract/oneflow-<version>.json (elasticityExpression, read in src/oca/ruby/opennebula/flow/grammar.treetop):
 * PEG, ordered choice, the whole text consumed. Our own code over those facts; it answers only "would
 * OneFlow parse this", it never evaluates.
 */
export interface ExpressionGrammar {
  space: string;
  andOperators: string[];
  orOperators: string[];
  notOperator: string;
  comparisonOperators: string[];
  numberPatterns: string[];
  variablePattern: string;
  variableQuotes: string[];
}

/** Each rule returns the index after what it matched, or -1. */
type Rule = (at: number) => number;

function recognizer(g: ExpressionGrammar, text: string) {
  const sticky = (source: string) => new RegExp(source, 'y');
  const numbers = g.numberPatterns.map(sticky);
  const variable = sticky(g.variablePattern);
  const spaces = (at: number) => {
    let i = at;
    while (text.startsWith(g.space, i)) i += g.space.length;
    return i;
  };
  const pattern = (re: RegExp, at: number) => {
    re.lastIndex = at;
    return re.test(text) ? re.lastIndex : -1;
  };
  const literal = (options: string[], at: number) => {
    const hit = options.find((o) => text.startsWith(o, at));
    return hit === undefined ? -1 : at + hit.length;
  };
  const firstOf = (rules: Rule[], at: number) => {
    for (const rule of rules) {
      const end = rule(at);
      if (end >= 0) return end;
    }
    return -1;
  };
  const seq = (at: number, ...steps: Rule[]) => {
    let i = at;
    for (const step of steps) {
      i = step(i);
      if (i < 0) return -1;
    }
    return i;
  };

  const quoted = (q: string) => (at: number) =>
    seq(
      at,
      (i) => literal([q], i),
      (i) => pattern(variable, i),
      (i) => literal([q], i),
    );
  const variableRule: Rule = (at) => firstOf([...g.variableQuotes.map(quoted), (i) => pattern(variable, i)], at);
  const numberRule: Rule = (at) =>
    firstOf(
      numbers.map((re) => (i: number) => pattern(re, i)),
      at,
    );
  const operand: Rule = (at) => firstOf([numberRule, variableRule], at);
  const comparison: Rule = (at) => seq(at, operand, spaces, (i) => literal(g.comparisonOperators, i), spaces, operand);
  const negation: Rule = (at) => seq(at, (i) => literal([g.notOperator], i), spaces, expression);
  const group: Rule = (at) =>
    seq(
      at,
      (i) => literal(['('], i),
      spaces,
      expression,
      spaces,
      (i) => literal([')'], i),
    );
  const logicCond: Rule = (at) => firstOf([comparison, negation, group], at);
  const joined = (ops: string[]) => (at: number) =>
    seq(at, logicCond, spaces, (i) => literal(ops, i), spaces, expression);
  const booleanExp: Rule = (at) => firstOf([joined(g.andOperators), joined(g.orOperators)], at);
  function expression(at: number): number {
    return seq(at, spaces, (i) => firstOf([booleanExp, logicCond], i), spaces);
  }
  return expression;
}

/** True when OneFlow's ElasticityGrammar would parse `text` (as ServiceTemplate.validate_vmvalues requires). */
export function parsesAsElasticityExpression(grammar: ExpressionGrammar, text: string): boolean {
  return recognizer(grammar, text)(0) === text.length;
}
