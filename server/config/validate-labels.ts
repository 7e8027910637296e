import { isRecord, own, reportUnknownKeys, typeName, type Report } from './document-shape.js';
import type { LabelSpec } from './types.js';

/** The classic Prometheus label name grammar (no UTF-8 names: older servers and clients reject them). */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LABEL_KEYS: readonly string[] = ['name', 'allowedValues'];
const METRIC_LABEL_KEYS: readonly string[] = [...LABEL_KEYS, 'fallback'];

export interface LabelRules {
  /** `le` carries a histogram's bucket bound, so a histogram cannot have a label of that name. */
  readonly histogram: boolean;
  /** Session labels must match exactly (4003 otherwise): no fallback for them. */
  readonly session?: boolean;
}

/**
 * Checks a list of `{ name, allowedValues }` at `field` (`labels` or `sessionLabels`) and reports
 * every problem. Returns the labels only when the whole list is valid.
 */
export function validateLabelList(value: unknown, field: string, rules: LabelRules, report: Report): LabelSpec[] | undefined {
  if (!Array.isArray(value)) {
    report(field, `must be an array of labels, got ${typeName(value)}`);
    return undefined;
  }
  const firstFieldByName = new Map<string, string>();
  const labels: LabelSpec[] = [];
  let valid = true;
  value.forEach((item: unknown, index) => {
    const label = validateLabel(item, `${field}[${index}]`, rules, firstFieldByName, report);
    if (label === undefined) valid = false;
    else labels.push(label);
  });
  return valid ? labels : undefined;
}

function validateLabel(
  item: unknown,
  at: string,
  rules: LabelRules,
  firstFieldByName: Map<string, string>,
  report: Report,
): LabelSpec | undefined {
  if (!isRecord(item)) {
    report(at, `must be an object with name and allowedValues, got ${typeName(item)}`);
    return undefined;
  }
  let valid = true;
  const fail: Report = (field, message) => {
    report(field, message);
    valid = false;
  };
  reportUnknownKeys(item, rules.session === true ? LABEL_KEYS : METRIC_LABEL_KEYS, at, fail);

  const name = own(item, 'name');
  if (name === undefined) fail(`${at}.name`, 'is required');
  else if (typeof name !== 'string') fail(`${at}.name`, `must be a string, got ${typeName(name)}`);
  else if (!LABEL_NAME.test(name)) fail(`${at}.name`, `invalid label name "${name}": must match [a-zA-Z_][a-zA-Z0-9_]*`);
  else if (name.startsWith('__')) fail(`${at}.name`, `invalid label name "${name}": names starting with __ are reserved for Prometheus`);
  else if (rules.histogram && name === 'le') fail(`${at}.name`, 'label "le" is reserved on histograms for the bucket bound');
  else {
    const first = firstFieldByName.get(name);
    if (first !== undefined) fail(`${at}.name`, `duplicate label "${name}", first defined at ${first}`);
    else firstFieldByName.set(name, at);
  }

  const allowedValues = validateAllowedValues(own(item, 'allowedValues'), `${at}.allowedValues`, fail);
  const fallback = own(item, 'fallback');
  if (fallback !== undefined && typeof fallback !== 'string') fail(`${at}.fallback`, `must be a string (the value to count values outside allowedValues under), got ${typeName(fallback)}`);
  if (!valid || typeof name !== 'string' || allowedValues === undefined) return undefined;
  if (typeof fallback !== 'string') return { name, allowedValues };
  // The fallback is an allowed value of its own: listed already, or added after the others.
  return { name, allowedValues: allowedValues.includes(fallback) ? allowedValues : [...allowedValues, fallback], fallback };
}

function validateAllowedValues(value: unknown, field: string, fail: Report): string[] | undefined {
  if (value === undefined) {
    fail(field, 'is required');
    return undefined;
  }
  if (!Array.isArray(value)) {
    fail(field, `must be an array of strings, got ${typeName(value)}`);
    return undefined;
  }
  // A label with no allowed value could never be set, so every sample of its metric would be rejected.
  if (value.length === 0) {
    fail(field, 'must not be empty');
    return undefined;
  }
  const firstIndexByValue = new Map<string, number>();
  const values: string[] = [];
  value.forEach((item: unknown, index) => {
    if (typeof item !== 'string') {
      fail(`${field}[${index}]`, `must be a string, got ${typeName(item)}`);
      return;
    }
    const first = firstIndexByValue.get(item);
    if (first !== undefined) {
      fail(`${field}[${index}]`, `duplicate value "${item}", first at index ${first}`);
      return;
    }
    firstIndexByValue.set(item, index);
    values.push(item);
  });
  return values.length === value.length ? values : undefined;
}
