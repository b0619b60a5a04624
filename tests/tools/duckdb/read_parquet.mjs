// read_parquet.mjs — an independent Parquet reader (DuckDB) for the tests and
// the benchmark of src/archive/parquet.c. It trusts nothing of our writer.
//
//   node read_parquet.mjs [--no-rows] FILE
//       One JSON object: {"schema": [...], "rows": [[...], ...],
//       "row_groups": N, "num_rows": N, "created_by": "...", "chunks": [...]}.
//       schema = every element of parquet_schema() (root first) as
//       {name, type (DuckDB type, null for the root), physical, repetition,
//       converted, logical, num_children}; chunks = parquet_metadata() per
//       column chunk. --no-rows leaves "rows" out (large files).
//   node read_parquet.mjs --query SQL FILE
//       Runs SQL with the views data (read_parquet), data_rn (the same plus
//       file_row_number), meta (parquet_metadata), schema (parquet_schema)
//       and filemeta (parquet_file_metadata) over FILE; prints
//       {"columns": [...], "rows": [[...], ...]}.
//   node read_parquet.mjs --zstd-copy IN OUT
//       Rewrites IN's rows with DuckDB's own writer (zstd) into OUT.
//
// Values keep their exact identity in the JSON: BIGINTs are printed as JSON
// integers of any size, floats with the shortest text that reads back the
// same double (a FLOAT widened to double is exact), and the values JSON has
// no number for as strings: "NaN", "Infinity", "-Infinity", "-0".
// Exits non-zero with the error on stderr when DuckDB rejects the file.
import { DuckDBInstance } from '@duckdb/node-api';

function sqlString(s) {
  return "'" + s.replaceAll("'", "''") + "'";
}

function toJson(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      if (Number.isNaN(v)) return '"NaN"';
      if (v === Infinity) return '"Infinity"';
      if (v === -Infinity) return '"-Infinity"';
      if (Object.is(v, -0)) return '"-0"';
      return JSON.stringify(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    default:
      break;
  }
  if (Array.isArray(v)) return '[' + v.map(toJson).join(',') + ']';
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('hex'));
  if (typeof v === 'object') {
    return '{' + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ':' + toJson(x)).join(',') + '}';
  }
  return JSON.stringify(String(v));
}

async function all(con, sql) {
  const reader = await con.runAndReadAll(sql);
  return { columns: reader.columnNames(), rows: reader.getRowsJS(), objects: reader.getRowObjectsJS() };
}

async function describe(con, file, withRows) {
  const f = sqlString(file);
  const schema = (await all(con, `SELECT * FROM parquet_schema(${f})`)).objects.map((e) => ({
    name: e.name,
    type: e.duckdb_type ?? null,
    physical: e.type,
    repetition: e.repetition_type,
    converted: e.converted_type,
    logical: e.logical_type,
    num_children: e.num_children,
  }));
  const file_meta = (await all(con, `SELECT created_by, num_rows, num_row_groups FROM parquet_file_metadata(${f})`)).objects[0];
  const chunks = (await all(con,
    `SELECT row_group_id, row_group_num_rows, column_id, path_in_schema, type, num_values,
            compression, encodings, stats_min_value, stats_max_value, stats_null_count,
            dictionary_page_offset, data_page_offset, total_compressed_size, total_uncompressed_size
       FROM parquet_metadata(${f}) ORDER BY row_group_id, column_id`)).objects;
  const out = {
    schema,
    row_groups: file_meta.num_row_groups,
    num_rows: file_meta.num_rows,
    created_by: file_meta.created_by,
    chunks,
  };
  if (withRows) out.rows = (await all(con, `SELECT * FROM read_parquet(${f})`)).rows;
  return out;
}

async function query(con, sql, file) {
  const f = sqlString(file);
  await con.run(`CREATE VIEW data AS SELECT * FROM read_parquet(${f})`);
  await con.run(`CREATE VIEW data_rn AS SELECT * FROM read_parquet(${f}, file_row_number = true)`);
  await con.run(`CREATE VIEW meta AS SELECT * FROM parquet_metadata(${f})`);
  await con.run(`CREATE VIEW schema AS SELECT * FROM parquet_schema(${f})`);
  await con.run(`CREATE VIEW filemeta AS SELECT * FROM parquet_file_metadata(${f})`);
  const r = await all(con, sql);
  return { columns: r.columns, rows: r.rows };
}

function usage() {
  process.stderr.write('usage: read_parquet.mjs [--no-rows] FILE | --query SQL FILE | --zstd-copy IN OUT\n');
  process.exitCode = 2;
}

async function main(argv) {
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  try {
    if (argv[0] === '--zstd-copy' && argv.length === 3) {
      await con.run(`COPY (SELECT * FROM read_parquet(${sqlString(argv[1])})) TO ${sqlString(argv[2])} (FORMAT parquet, COMPRESSION zstd)`);
      return;
    }
    if (argv[0] === '--query' && argv.length === 3) {
      process.stdout.write(toJson(await query(con, argv[1], argv[2])) + '\n');
      return;
    }
    if (argv[0] === '--no-rows' && argv.length === 2) {
      process.stdout.write(toJson(await describe(con, argv[1], false)) + '\n');
      return;
    }
    if (argv.length === 1 && !argv[0].startsWith('--')) {
      process.stdout.write(toJson(await describe(con, argv[0], true)) + '\n');
      return;
    }
    usage();
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`read_parquet: ${err && err.message ? err.message : err}\n`);
  process.exitCode = 1;
});
