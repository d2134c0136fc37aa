// Checks a Parquet file's page headers before hyparquet decodes it. hyparquet trusts them: a v2 data page
// without its level lengths sends its RLE decoder into an endless loop (the read offset becomes NaN), and
// counts and sizes are allocated as given. Each page of each column chunk is walked here (headers only)
// and every count and size is bounded by the file's own size.
import { DatasetError } from "../../errors";

/** The parts of hyparquet's metadata and page headers read here. */
interface ColumnMeta { path_in_schema: string[]; data_page_offset: bigint; dictionary_page_offset?: bigint; total_compressed_size: bigint }
interface ParquetMeta { row_groups: { num_rows: bigint; columns: { meta_data?: ColumnMeta }[] }[] }
interface PageHeader {
  type?: string; uncompressed_page_size?: number; compressed_page_size?: number;
  data_page_header?: { num_values?: number }; dictionary_page_header?: { num_values?: number };
  data_page_header_v2?: { num_values?: number; num_rows?: number; definition_levels_byte_length?: number; repetition_levels_byte_length?: number };
}
export type ReadPageHeader = (reader: { view: DataView; offset: number }) => PageHeader;

/** Snappy (the codec tunekit reads) expands at most ~21:1; 64:1 leaves room and still bounds the allocation. */
const MAX_PAGE_RATIO = 64;

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

export function checkParquetPages(buf: ArrayBuffer, metadata: unknown, file: string, readPageHeader: ReadPageHeader): void {
  const meta = metadata as ParquetMeta;
  const size = buf.byteLength;
  // At least one bit per value or row: more than that from this many bytes is a corrupt count, not data.
  const maxValues = 8 * size;
  const view = new DataView(buf);
  meta.row_groups.forEach((rg, g) => {
    if (Number(rg.num_rows) > maxValues) throw new DatasetError(`${file}: row group ${g} claims ${rg.num_rows} rows; a ${size}-byte file holds at most ${maxValues}`);
    for (const c of rg.columns) {
      const m = c.meta_data;
      if (!m) continue;
      const col = `${file}: column '${m.path_in_schema.join(".")}' (row group ${g})`;
      const start = Number(m.dictionary_page_offset ?? m.data_page_offset), end = start + Number(m.total_compressed_size);
      if (!(isCount(start) && isCount(end) && end <= size)) throw new DatasetError(`${col}: its pages [${start}, ${end}) lie outside the ${size}-byte file`);
      for (let at = start, page = 0; at < end; page++) {
        const where = `${col}, page ${page} at byte ${at}`;
        const reader = { view, offset: at };
        const h = readPageHeader(reader);
        const { compressed_page_size: csize, uncompressed_page_size: usize } = h;
        if (!isCount(csize) || reader.offset + csize > end) throw new DatasetError(`${where}: compressed size ${csize} runs past the column chunk's end at byte ${end}`);
        if (!isCount(usize) || usize > MAX_PAGE_RATIO * csize + 1024) throw new DatasetError(`${where}: uncompressed size ${usize} from ${csize} bytes; expected at most ${MAX_PAGE_RATIO}:1`);
        const v2 = h.data_page_header_v2;
        const values = (h.data_page_header ?? h.dictionary_page_header ?? v2)?.num_values;
        if (values !== undefined && (!isCount(values) || values > maxValues)) throw new DatasetError(`${where}: ${values} values; a ${size}-byte file holds at most ${maxValues}`);
        if (v2) {
          const { definition_levels_byte_length: d, repetition_levels_byte_length: r } = v2;
          if (!isCount(d) || !isCount(r) || d + r > csize) {
            throw new DatasetError(`${where}: a v2 data page needs definition/repetition level lengths within its ${csize} bytes, got ${d} and ${r}`);
          }
        }
        at = reader.offset + csize;
      }
    }
  });
}
