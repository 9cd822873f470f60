/** Countdown: problems, solver, prompts, official score and dense reward, step checker, traces, hard negatives. */
export {
  checkEquation,
  type EquationCheck,
  extract,
  MAX_ANSWER_CHARS,
  reward,
  score,
  type ScoreOptions,
} from "./score.ts";
export {
  isSolvable,
  type Solution,
  type SolutionNode,
  type SolutionStep,
  solve,
  solveAll,
  type SolveAllOptions,
  type SolveOptions,
} from "./solver.ts";
export {
  difficultyTiers,
  formatProblemsJsonl,
  generateCurriculum,
  type GenerateOptions,
  generateProblem,
  generateProblems,
  parseProblemsJsonl,
  type Problem,
  ProblemFormatError,
  readProblemsJsonl,
  type Tier,
  tierOf,
  writeProblemsJsonl,
} from "./problems.ts";
export { basePrompt, chatMessages, chatPrompt } from "./prompt.ts";
export { type CheckedStep, checkSteps, type StepCheckOptions } from "./steps.ts";
export {
  makeTrace,
  type Plan,
  planOf,
  renderTrace,
  type Trace,
  TRACE_STYLES,
  type TraceOptions,
  type TraceStyle,
} from "./traces.ts";
export {
  inBucket,
  makeNegative,
  makeNegatives,
  type Negative,
  NEGATIVE_BUCKETS,
  type NegativeBucket,
} from "./negatives.ts";
export { type Expr, formatExpr, parseExpression } from "./expression.ts";
export { type Rational, ratToString } from "./rational.ts";
