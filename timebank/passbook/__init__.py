"""The paper passbook (存折): a member's entries as a PDF in Chinese, each page with its log proof."""
