"""The org-unit tree (组织): county 县 > tenant 乡镇/开发区/新区/县直部门 > 党总支 > 党支部."""
