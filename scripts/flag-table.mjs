#!/usr/bin/env node
// Rewrites the README's table of etcd flags etsd accepts or refuses (between the
// etcd-flags markers) from src/common/etcd-flags.ts. Run after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
import { etcdFlagTable } from '../dist/src/common/etcd-flags.js';

const path = new URL('../README.md', import.meta.url);
const text = readFileSync(path, 'utf8');
const begin = '<!-- etcd-flags:begin -->';
const end = '<!-- etcd-flags:end -->';
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error('README.md has no etcd-flags markers');
writeFileSync(path, text.slice(0, i + begin.length) + '\n' + etcdFlagTable() + '\n' + text.slice(j));
