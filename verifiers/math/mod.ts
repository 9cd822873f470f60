/** Math answer verification: extraction, equivalence and scoring. */
export { extractAnswer, type ExtractOptions } from "./extract.ts";
export { isEquivalent, normalizeAnswer } from "./equivalence.ts";
export { extract, reward, score } from "./score.ts";
export { type ErrorProfile, errorProfile } from "./error_profile.ts";
