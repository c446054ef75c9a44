// Eddy's guard prelude: runs in every VM before the function's own code.
// goja has no memory cap, and a native builtin (fill, join, repeat, a typed
// array constructor...) cannot be interrupted once it started: one call
// could allocate gigabytes or loop for minutes. These wrappers refuse such
// calls before the native code runs; L.limit stops the invocation with
// resource_limit (it cannot be caught). Heap growth from ordinary code is
// the watchdog's business (see watchdog.go).
(function (g, L) {
	'use strict';
	var MAXLEN = L.maxLength, MAXBYTES = L.maxBytes, MAXSTR = L.maxString;
	var limit = L.limit, join = L.join;
	var Str = g.String, RegExpC = g.RegExp, isArray = g.Array.isArray, min = g.Math.min;
	var split = g.String.prototype.split, getOwnPropertyNames = g.Object.getOwnPropertyNames;
	var getOwnPropertyDescriptor = g.Object.getOwnPropertyDescriptor, objToString = g.Object.prototype.toString;
	var apply = g.Reflect.apply, construct = g.Reflect.construct;
	var defineProperty = g.Object.defineProperty, getPrototypeOf = g.Object.getPrototypeOf;
	var setPrototypeOf = g.Object.setPrototypeOf;
	var AP = g.Array.prototype, SP = g.String.prototype;

	function lengthOf(o) {
		if (o === null || o === undefined) {
			return 0;
		}
		var n = o.length;
		return typeof n === 'number' ? n : +n;
	}
	function checkLength(o) {
		var n = lengthOf(o);
		if (n > MAXLEN) {
			limit('array length', n, MAXLEN);
		}
	}
	function method(obj, name, check) {
		var f = obj[name];
		if (typeof f !== 'function') {
			return;
		}
		var w = {
			[name]: function (...args) {
				check(this, args);
				return apply(f, this, args);
			}
		}[name];
		defineProperty(w, 'length', {value: f.length});
		defineProperty(obj, name, {value: w, writable: true, configurable: true, enumerable: false});
	}

	// Array methods loop natively over this.length, which may be huge on a
	// sparse array or an array-like ({length: 4e8}) without any allocation.
	['copyWithin', 'entries', 'every', 'fill', 'filter', 'find', 'findIndex',
		'findLast', 'findLastIndex', 'flatMap', 'forEach', 'includes', 'indexOf',
		'keys', 'lastIndexOf', 'map', 'reduce', 'reduceRight', 'reverse', 'shift', 'slice',
		'some', 'sort', 'splice', 'toLocaleString', 'toReversed', 'toSorted', 'toSpliced',
		'unshift', 'values', 'with'].forEach(function (name) {
		method(AP, name, checkLength);
	});
	method(AP, 'concat', function (self, args) {
		var n = lengthOf(self);
		for (var i = 0; i < args.length; i++) {
			n += lengthOf(args[i]);
		}
		if (n > MAXLEN) {
			limit('array length', n, MAXLEN);
		}
	});
	method(AP, 'flat', function (self, args) {
		checkLength(self);
		var depth = args.length > 0 && args[0] !== undefined ? +args[0] : 1;
		var n = 0;
		(function count(a, d) {
			for (var i = 0; i < a.length; i++) {
				var e = a[i];
				if (d > 0 && isArray(e)) {
					checkLength(e);
					count(e, d - 1);
				} else if (++n > MAXLEN) {
					limit('array length', n, MAXLEN);
				}
			}
		})(self, depth);
	});
	// join builds its string natively: a Go version with the length limit.
	var jn = {join: function (sep) { return join(this, sep); }}.join;
	defineProperty(AP, 'join', {value: jn, writable: true, configurable: true, enumerable: false});
	var TAP = getPrototypeOf(g.Uint8Array.prototype);
	defineProperty(TAP, 'join', {value: jn, writable: true, configurable: true, enumerable: false});
	defineProperty(AP, 'toString', {
		value: {toString: function () { return typeof this.join === 'function' ? this.join() : apply(objToString, this, []); }}.toString,
		writable: true, configurable: true, enumerable: false
	});
	// Spread, Array.from and for-of use the iterator: check the length first.
	var values = AP[Symbol.iterator];
	var it = {[Symbol.iterator]: function () { checkLength(this); return apply(values, this, []); }}[Symbol.iterator];
	defineProperty(AP, Symbol.iterator, {value: it, writable: true, configurable: true, enumerable: false});
	method(g.Array, 'from', function (self, args) { checkLength(args[0]); });
	// apply and Reflect copy an array-like's elements into an argument list.
	var FP = g.Function.prototype;
	method(FP, 'apply', function (self, args) { checkLength(args[1]); });
	method(g.Reflect, 'apply', function (self, args) { checkLength(args[2]); });
	method(g.Reflect, 'construct', function (self, args) { checkLength(args[1]); });

	// Strings.
	function checkString(n) {
		if (n > MAXSTR) {
			limit('string length', n, MAXSTR);
		}
	}
	method(SP, 'repeat', function (self, args) { checkString(Str(self).length * (+args[0] || 0)); });
	method(SP, 'padStart', function (self, args) { checkString(+args[0] || 0); });
	method(SP, 'padEnd', function (self, args) { checkString(+args[0] || 0); });
	method(SP, 'concat', function (self, args) {
		var n = Str(self).length;
		for (var i = 0; i < args.length; i++) {
			n += Str(args[i]).length;
		}
		checkString(n);
	});
	// replace and replaceAll build their result natively: bound it up front
	// for a replacement string (cheaply: most calls are far from the limit),
	// count it as it goes for a replacement function. guardReplace returns
	// the replacement to pass on.
	var indexOf = SP.indexOf, symbolReplace = Symbol.replace;
	function guardReplace(s, pattern, r, all) {
		if (typeof r === 'function') {
			var total = s.length, f = r;
			return function () {
				var out = Str(apply(f, undefined, arguments));
				total += out.length;
				checkString(total);
				return out;
			};
		}
		r = Str(r);
		if ((s.length + 1) * (r.length + 1) <= MAXSTR && apply(indexOf, r, ['$']) < 0) {
			return r;
		}
		var dollars = 0;
		for (var i = apply(indexOf, r, ['$']); i >= 0; i = apply(indexOf, r, ['$', i + 1])) {
			dollars++;
		}
		var many = all || (pattern instanceof RegExpC && pattern.global);
		checkString(s.length + (many ? s.length + 1 : 1) * (r.length + dollars * s.length));
		return r;
	}
	function replacer(name, native, all) {
		var w = {[name]: function (pattern, replacement) {
			// A pattern with its own Symbol.replace (a RegExp) does the work
			// there, guarded below.
			if (this === null || this === undefined ||
				pattern !== null && pattern !== undefined && typeof pattern[symbolReplace] === 'function') {
				return apply(native, this, [pattern, replacement]);
			}
			var s = Str(this);
			return apply(native, s, [pattern, guardReplace(s, pattern, replacement, all)]);
		}}[name];
		defineProperty(SP, name, {value: w, writable: true, configurable: true, enumerable: false});
	}
	replacer('replace', SP.replace, false);
	if (typeof SP.replaceAll === 'function') {
		replacer('replaceAll', SP.replaceAll, true);
	}
	var RP = g.RegExp.prototype, symReplace = RP[symbolReplace];
	defineProperty(RP, symbolReplace, {
		value: {[symbolReplace]: function (string, replacement) {
			var s = Str(string);
			return apply(symReplace, this, [s, guardReplace(s, this, replacement, false)]);
		}}[symbolReplace], writable: true, configurable: true, enumerable: false
	});

	// Buffers and typed arrays allocate in their constructor.
	function wrapConstructor(name, check) {
		var O = g[name];
		if (typeof O !== 'function') {
			return;
		}
		var W = {[name]: function (a, b, c) {
			if (new.target === undefined) {
				return apply(O, undefined, arguments); // throws as the original does
			}
			check(a);
			return construct(O, arguments, new.target === W ? O : new.target);
		}}[name];
		setPrototypeOf(W, getPrototypeOf(O));
		var keys = getOwnPropertyNames(O);
		for (var i = 0; i < keys.length; i++) {
			var k = keys[i];
			if (k !== 'length' && k !== 'name' && k !== 'prototype') {
				defineProperty(W, k, getOwnPropertyDescriptor(O, k));
			}
		}
		defineProperty(W, 'prototype', {value: O.prototype, writable: false, enumerable: false, configurable: false});
		defineProperty(O.prototype, 'constructor', {value: W, writable: true, configurable: true, enumerable: false});
		g[name] = W;
	}
	wrapConstructor('ArrayBuffer', function (n) {
		if (+n > MAXBYTES) {
			limit('ArrayBuffer bytes', +n, MAXBYTES);
		}
	});
	['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
		'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'].forEach(function (name) {
		var O = g[name];
		if (typeof O !== 'function') {
			return;
		}
		var bpe = O.BYTES_PER_ELEMENT;
		wrapConstructor(name, function (a) {
			var n;
			if (a !== null && typeof a === 'object') {
				n = lengthOf(a); // 0 for an ArrayBuffer: a view allocates nothing
			} else {
				n = +a;
			}
			if (n > MAXLEN || n * bpe > MAXBYTES) {
				limit(name + ' length', n, min(MAXLEN, MAXBYTES / bpe));
			}
		});
	});
})
