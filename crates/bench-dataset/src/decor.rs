//! What the stage adds to every record it writes, whatever the type: synthetic image specs
//! (`dataset.images`) and the prompt template for given prompts (`dataset.prompt_template`).

use bench_config::dataset::DatasetConfig;
use bench_types::DatasetRecord;
use bench_types::image::SyntheticImage;

use crate::DatasetError;
use crate::sampling::{item_seed, stream};
use crate::template::PromptTemplate;
use crate::text::Text;

/// The additions, applied to record `index` (0-based, file order) as it is written.
#[derive(Debug, Clone)]
pub(crate) struct Decor {
    seed: u64,
    images: Option<(u32, SyntheticImage)>,
    /// The template and tokenizer for types whose prompts are given (not generated to a length).
    wrap: Option<(PromptTemplate, Text)>,
    kind: &'static str,
}

impl Decor {
    /// The additions `d` asks for; `wrap` is false where the generator applies the template
    /// itself (random) or the type has none.
    pub(crate) fn new(
        d: &DatasetConfig,
        seed: u64,
        text: &Text,
        kind: &'static str,
        wrap: Option<&PromptTemplate>,
    ) -> Result<Option<Self>, DatasetError> {
        let images = match &d.images {
            Some(im) => {
                let (width, height) = im.dims().map_err(|msg| DatasetError::Config {
                    key: "dataset.images.size".into(),
                    msg,
                })?;
                let spec = SyntheticImage {
                    width,
                    height,
                    format: im.format(),
                    seed: 0,
                };
                Some((im.count, spec))
            }
            None => None,
        };
        if images.is_none() && wrap.is_none() {
            return Ok(None);
        }
        Ok(Some(Decor {
            seed,
            images,
            wrap: wrap.map(|t| (t.clone(), text.clone())),
            kind,
        }))
    }

    /// `rec`, decorated.
    pub(crate) fn apply(
        &self,
        rec: DatasetRecord,
        index: u64,
    ) -> Result<DatasetRecord, DatasetError> {
        let mut rec = match &self.wrap {
            Some((t, text)) => t.wrap(text, rec, index)?,
            None => rec,
        };
        if let Some((count, spec)) = self.images {
            match &mut rec {
                DatasetRecord::Plain(p) => {
                    p.images = Some(
                        (0..u64::from(count))
                            .map(|k| SyntheticImage {
                                seed: item_seed(self.seed, stream::IMAGES, index, k),
                                ..spec
                            })
                            .collect(),
                    );
                }
                DatasetRecord::Session(_) => {
                    return Err(DatasetError::Config {
                        key: "dataset.images".into(),
                        msg: format!(
                            "applies to plain prompts, and dataset.type {} wrote a session (record {})",
                            self.kind,
                            index + 1
                        ),
                    });
                }
            }
        }
        Ok(rec)
    }
}
